#include "engine/queue_errors.h"

#include <string>

namespace conveyor {

namespace {

std::string quoted(std::string_view kind, std::string_view name) {
  std::string s(kind);
  s += " '";
  s += name;
  s += "'";
  return s;
}

std::string_view op_name(QueueOp op) {
  switch (op) {
    case QueueOp::kEnqueue: return "Enqueue";
    case QueueOp::kDequeue: return "Dequeue";
    case QueueOp::kClose: return "Close";
  }
  return "Operation";
}

}  // namespace

Error queue_error(Status status, QueueOp op, std::string_view name, std::size_t requested,
                  std::size_t current, std::string_view kind) {
  switch (status) {
    case Status::kClosed:
      if (op == QueueOp::kEnqueue) {
        return Error(ErrorKind::kCancelled, quoted(kind, name) + " is closed.");  // A18
      }
      if (op == QueueOp::kClose) {
        return Error(ErrorKind::kCancelled, "Queue '" + std::string(name) + "' is already closed.");
      }
      return Error(ErrorKind::kOutOfRange,  // A19
                   quoted(kind, name) + " is closed and has insufficient elements (requested " +
                       std::to_string(requested) + ", current size " + std::to_string(current) +
                       ")");
    case Status::kCancelled:  // A23 (a waiting plain close is failed like an enqueue)
      return Error(ErrorKind::kCancelled,
                   std::string(op == QueueOp::kDequeue ? "Dequeue" : "Enqueue") +
                       " operation was cancelled");
    case Status::kTimedOut:  // A26
      return Error(ErrorKind::kDeadlineExceeded,
                   std::string(op_name(op)) + " on " + quoted(kind, name) +
                       " did not complete before its deadline");
    case Status::kOk:
    case Status::kFull:
    case Status::kEmpty:
      break;
  }
  return Error(ErrorKind::kInternal, std::string(op_name(op)) + " on " + quoted(kind, name) +
                                         ": status '" + std::string(to_string(status)) +
                                         "' is not an error of a blocking call");
}

}  // namespace conveyor
