#include "engine/looper_thread.h"

#include <utility>

#include "engine/deadline.h"
#include "engine/status.h"

namespace conveyor {

LooperThread::LooperThread(Coordinator& coord, std::optional<std::chrono::nanoseconds> interval,
                           Target target, std::string name)
    : coord_(coord), interval_(interval), target_(std::move(target)), name_(std::move(name)) {
  if (interval_ && interval_->count() < 0) {
    throw invalid_argument("interval (ns)", static_cast<long long>(interval_->count()),
                           "must be >= 0, or std::nullopt for back-to-back runs");
  }
}

LooperThread::~LooperThread() = default;  // ~Thread joins

void LooperThread::start() {
  if (thread_.handle().valid()) {
    throw Error(ErrorKind::kFailedPrecondition, "LooperThread " + name_ + " already started");
  }
  thread_ = Thread(name_, [this] { run(); });
  coord_.register_thread(thread_);
}

void LooperThread::join() { thread_.join(); }

std::unique_ptr<LooperThread> LooperThread::loop(Coordinator& coord,
                                                 std::optional<std::chrono::nanoseconds> interval,
                                                 Target target, std::string name) {
  auto looper =
      std::make_unique<LooperThread>(coord, interval, std::move(target), std::move(name));
  looper->start();
  return looper;
}

void LooperThread::run_loop() {
  if (target_) target_();
}

void LooperThread::run() {
  coord_.stop_on_exception([this] {
    start_loop();
    if (!interval_) {
      while (!coord_.should_stop()) run_loop();
    } else {
      // Fixed rate, as TF: the first run is due now, the next ones every interval after it.
      Deadline::Clock::time_point next = Deadline::Clock::now();
      while (!coord_.wait_for_stop(Deadline::at(next))) {
        // Saturates: a huge interval means "never again", not an overflowed time point.
        if (Deadline::Clock::time_point::max() - next <= *interval_) {
          next = Deadline::Clock::time_point::max();
        } else {
          next += *interval_;
        }
        run_loop();
      }
    }
    stop_loop();
  });
}

}  // namespace conveyor
