// `conveyor ingest`: TF's canonical input pipeline (SPEC.md E) as Conveyor's main job.
//
//   files (string_input_producer with num_epochs and shuffle, each file tagged with its epoch)
//     -> N reader threads (TFRecord or text: one reader source per runner thread)
//     -> parse (the default dataset's records carry an id and a CRC32C; a bad one is DataLoss)
//     -> shuffle_batch_join (one runner thread per reader)
//     -> a consumer that checks every record arrived exactly once per epoch.
//
// With no files it runs on the default dataset, generated deterministically into a cache folder
// on first use (engine/dataset.h). A corrupt record stops the pipeline through the coordinator:
// batches already queued are still consumed and counted, then the error is reported and the
// exit code is non-zero.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace conveyor::tools {

struct IngestOptions {
  std::vector<std::string> files;  // empty: the default dataset
  std::string data_dir;            // default dataset location; empty: the cache folder
  int readers = 4;
  std::int64_t batch_size = 128;
  std::int64_t capacity = 4096;
  std::int64_t min_after_dequeue = 1024;
  std::int64_t epochs = 2;
  std::uint64_t seed = 1;
  std::string json;        // write the summary here as one JSON object
  bool progress = true;    // a progress bar on a terminal, plain lines otherwise
  std::string trace;       // record a trace of the run into this file (engine/trace.h)
};

// Runs the pipeline, prints the summary; returns the process exit code (0 ok, 1 pipeline
// error or not exactly once).
int run_ingest(const IngestOptions& options);

}  // namespace conveyor::tools
