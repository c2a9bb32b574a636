#include "engine/internal/nats_status.h"

namespace conveyor::jetstream::internal {

bool is_permanent(natsStatus s) noexcept {
  switch (s) {
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_SUBSCRIPTION:
    case NATS_INVALID_TIMEOUT:
    case NATS_NO_MEMORY:
      return true;
    default:
      return false;
  }
}

ErrorKind kind_of(natsStatus s) noexcept {
  switch (s) {
    case NATS_IO_ERROR:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_CONNECTION_CLOSED:
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_SECURE_CONNECTION_WANTED:
    case NATS_SECURE_CONNECTION_REQUIRED:
      return ErrorKind::kUnavailable;
    case NATS_TIMEOUT:
      return ErrorKind::kDeadlineExceeded;
    case NATS_ADDRESS_MISSING:
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_ARG:
    case NATS_MAX_PAYLOAD:
      return ErrorKind::kInvalidArgument;
    default:
      return ErrorKind::kInternal;
  }
}

Error nats_error(std::string_view what, natsStatus s, jsErrCode code) {
  return nats_error(kind_of(s), what, s, code);
}

Error nats_error(ErrorKind kind, std::string_view what, natsStatus s, jsErrCode code) {
  std::string m(what);
  m += ": ";
  m += natsStatus_GetText(s);
  if (code != 0) m += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
  return Error(kind, m);
}

}  // namespace conveyor::jetstream::internal
