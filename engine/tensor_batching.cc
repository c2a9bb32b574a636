#include "engine/tensor_batching.h"

namespace conveyor::internal {

QueueSpec tensor_batch_spec(const TensorInput& input, const TensorBatchOptions& options,
                            const char* function) {
  check_batch_options(options, function);
  if (input.dtypes.empty()) {  // E8
    throw Error(ErrorKind::kInvalidArgument,
                std::string("Expected at least one tensor in ") + function + "()");
  }
  if (input.shapes.size() != input.dtypes.size()) {
    throw invalid_argument(std::string(function) + " input shapes",
                           static_cast<long long>(input.shapes.size()),
                           "must be one per dtype (" + std::to_string(input.dtypes.size()) + ")");
  }
  const std::vector<std::vector<Shape>> sources{input.shapes};
  QueueSpec spec;
  spec.dtypes = input.dtypes;
  spec.shapes = infer_shapes(sources, options.enqueue_mode, options.shapes, options.padding);  // E7
  spec.names = input.names;
  spec.padding = options.padding;
  spec.validate();
  return spec;
}

bool apply_keep_input(const Tensor& keep, EnqueueMode mode, Element& element) {
  if (keep.dtype() != DType::kBool) {
    throw invalid_argument("keep_input", std::string(to_string(keep.dtype())),
                           "must be a bool tensor");
  }
  if (keep.shape().rank() == 0) return keep.data<bool>()[0];  // enqueue the whole run or skip
  if (mode != EnqueueMode::kMany || keep.shape().rank() != 1) {
    throw invalid_argument("keep_input shape", keep.shape().to_string(),
                           "must be a scalar, or a vector with enqueue_many");
  }
  const std::int64_t n = batch_size(element);
  if (keep.shape().dim(0) != n) {
    throw invalid_argument("keep_input shape", keep.shape().to_string(),
                           "must have the batch's length " + std::to_string(n));
  }
  // Keep the selected rows: split, filter, and stack again (a rare, per-run cost).
  std::vector<Element> rows = split_batch(element);
  std::vector<Element> kept;
  const bool* flags = keep.data<bool>();
  for (std::int64_t i = 0; i < n; ++i) {
    if (flags[i]) kept.push_back(std::move(rows[static_cast<std::size_t>(i)]));
  }
  if (kept.empty()) return false;
  QueueSpec row_spec;
  for (const Tensor& t : element.components) {
    row_spec.dtypes.push_back(t.dtype());
    row_spec.shapes.push_back(t.shape().drop_first());
  }
  element = stack(kept, row_spec);
  return true;
}

}  // namespace conveyor::internal
