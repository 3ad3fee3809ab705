#include "herald/core/message.h"

#include "herald/core/event.h"
#include "herald/core/tracing.h"

namespace herald {
namespace {
thread_local const Message* current_message = nullptr;
}  // namespace

const Message* CurrentMessage() { return current_message; }

namespace internal {
ScopedCurrentMessage::ScopedCurrentMessage(const Message* message) : previous_(current_message) {
  current_message = message;
}
ScopedCurrentMessage::~ScopedCurrentMessage() { current_message = previous_; }
}  // namespace internal

void PropagateContext(Headers& headers) {
  // The span running here (a traced handler's, or a ScopedTraceContext's)
  // is the parent of what is made here, rather than the handled record's
  // own parent.
  if (std::optional<TraceContext> context = CurrentTraceContext();
      context.has_value() && !FindHeader(headers, kTraceparentHeader).has_value()) {
    headers.emplace_back(std::string(kTraceparentHeader), FormatTraceparent(*context));
  }
  const Message* m = CurrentMessage();
  if (m == nullptr) return;
  for (std::string_view name : {kCorrelationIdHeader, kTraceparentHeader, kTracestateHeader}) {
    if (FindHeader(headers, name).has_value()) continue;
    if (auto v = FindHeader(m->envelope.headers, name)) headers.emplace_back(std::string(name), std::string(*v));
  }
  // An event caused by a handled event is correlated with it.
  if (!FindHeader(headers, kCorrelationIdHeader).has_value()) {
    headers.emplace_back(std::string(kCorrelationIdHeader), m->envelope.id);
  }
}

}  // namespace herald
