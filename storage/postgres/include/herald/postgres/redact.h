// herald/postgres/redact.h: the one place that hides PostgreSQL passwords.
//
// A libpq connection string may hold two secrets: `password` and
// `sslpassword` (the passphrase of the client key). herald never prints a
// connection string or a libpq message without passing it through here;
// a program that logs its own connection strings can do the same:
//
//   std::cerr << herald::postgres::RedactConnectionString(dsn);
//   // "host=db user=svc password=[redacted]"
//   // "postgresql://svc:[redacted]@db/orders?sslpassword=[redacted]"
//
// Both forms libpq takes are understood: key=value (values bare, with
// backslash escapes, or single-quoted) and URIs (postgresql:// or
// postgres://, the password after user: in the authority, password= and
// sslpassword= among the query parameters, percent-encoded or not).
// Keyword names are matched as libpq matches them (exactly, lower case).
//
// Thread-safety: the functions are pure.
#ifndef HERALD_POSTGRES_REDACT_H_
#define HERALD_POSTGRES_REDACT_H_

#include <string>
#include <string_view>
#include <vector>

namespace herald::postgres {

// `conninfo` with the value of every password and sslpassword replaced by
// "[redacted]"; everything else as it was. A string that does not parse is
// redacted as far as it can be read, and never returned with a secret
// that a `password`/`sslpassword` keyword or a URI's user:password shows.
std::string RedactConnectionString(std::string_view conninfo);

// The secrets of `conninfo` in every form they may take in a message: as
// written (quoted, escaped or percent-encoded) and as libpq reads them.
// Empty values are left out.
std::vector<std::string> ConnectionStringSecrets(std::string_view conninfo);

// `text` (a libpq error, a log line, a Status message) with every secret
// of `conninfo` (ConnectionStringSecrets) replaced by "[redacted]".
std::string RedactConnectionSecrets(std::string_view conninfo, std::string_view text);

}  // namespace herald::postgres

#endif  // HERALD_POSTGRES_REDACT_H_
