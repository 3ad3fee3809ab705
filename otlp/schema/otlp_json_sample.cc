// Writes a few spans through herald::otlp::JsonLinesTracer to the file named
// by argv[1], covering every kind of attribute value, a parent, an error
// status and hostile text: the input of check_otlp_json.py.
#include <cstdio>
#include <limits>
#include <string>

#include "herald/core/tracing.h"
#include "herald/otlp/json_lines_tracer.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: otlp_json_sample OUTPUT.jsonl\n");
    return 2;
  }
  auto tracer = herald::otlp::JsonLinesTracer::Open(
      {.path = argv[1],
       .service_name = "otlp-json-sample",
       .resource_attributes = {{"service.version", std::string("1.0.0")}, {"host.cpus", int64_t{2}}}});
  if (!tracer.ok()) {
    std::fprintf(stderr, "%s\n", std::string(tracer.status().message()).c_str());
    return 1;
  }
  std::unique_ptr<herald::Span> root =
      (*tracer)->StartSpan({.name = "send orders",
                            .kind = herald::SpanKind::kProducer,
                            .attributes = {{"messaging.destination.name", std::string("orders")},
                                           {"herald.attempt", int64_t{1}},
                                           {"herald.flag", true},
                                           {"herald.ratio", 0.5},
                                           {"herald.nan", std::numeric_limits<double>::quiet_NaN()}}});
  std::unique_ptr<herald::Span> child = (*tracer)->StartSpan({.name = std::string("process orders \xff \"quoted\"\n"),
                                                              .kind = herald::SpanKind::kConsumer,
                                                              .parent = root->context()});
  child->SetAttribute("herald.outcome", std::string("retry"));
  child->End(absl::UnavailableError("db down \xc3("));
  root->End(absl::OkStatus());
  std::unique_ptr<herald::Span> internal = (*tracer)->StartSpan({.name = "create customer"});
  internal->End(absl::OkStatus());
  return (*tracer)->write_error().ok() && (*tracer)->spans_written() == 3 ? 0 : 1;
}
