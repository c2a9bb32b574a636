// The NATS client's statuses as Conveyor errors (engine/jetstream.h): one place that decides
// which client status is which error kind and how the message reads. Messages never carry
// credentials: callers pass redacted URLs only.
#pragma once

#include <nats/nats.h>

#include <string>
#include <string_view>

#include "engine/status.h"

namespace conveyor::jetstream::internal {

// A status no retry can mend: the connection was closed for good, or the call itself is wrong.
// A fetch retries everything else for a while (a restarting JetStream answers in many ways).
bool is_permanent(natsStatus s) noexcept;

// Unavailable for statuses about reaching the server, DeadlineExceeded for NATS_TIMEOUT,
// InvalidArgument for bad arguments (subject, URL), Internal otherwise.
ErrorKind kind_of(natsStatus s) noexcept;

// "<what>: <client's status text>[ (JetStream error <code>)]", of kind_of(s) unless `kind` given.
Error nats_error(std::string_view what, natsStatus s, jsErrCode code = static_cast<jsErrCode>(0));
Error nats_error(ErrorKind kind, std::string_view what, natsStatus s,
                 jsErrCode code = static_cast<jsErrCode>(0));

}  // namespace conveyor::jetstream::internal
