// libFuzzer target: QueueRunnerDef::from_wire over arbitrary bytes (tests/fuzz/README.md).
// Invariants: the only error is InvalidArgument; a def that parses round-trips through
// to_wire() / from_wire() unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "engine/queue_runner_def.h"
#include "engine/status.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  conveyor::QueueRunnerDef def;
  try {
    def = conveyor::QueueRunnerDef::from_wire(bytes);
  } catch (const conveyor::Error& e) {
    if (e.kind() != conveyor::ErrorKind::kInvalidArgument) std::abort();
    return 0;
  }
  if (conveyor::QueueRunnerDef::from_wire(def.to_wire()) != def) std::abort();
  return 0;
}
