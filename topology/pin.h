// topology/pin.h: the first cut's header, kept so that code written against it (and branches not
// yet merged) still compiles. Topology, Error and pin_current_thread now live in
// topology/topology.h; include that instead.
#pragma once

#include "topology/topology.h"  // IWYU pragma: export
