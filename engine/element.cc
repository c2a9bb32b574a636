#include "engine/element.h"

#include <algorithm>
#include <cstring>
#include <ostream>
#include <set>
#include <string_view>
#include <utility>

#include "engine/status.h"

namespace conveyor {

namespace {

Error invalid(const std::string& message) { return Error(ErrorKind::kInvalidArgument, message); }

std::string str(std::size_t n) { return std::to_string(n); }
std::string str(std::int64_t n) { return std::to_string(n); }

// Python's repr of a sorted list of strings, as TF prints dict keys: "['a', 'b']".
template <class Range>
std::string py_list(const Range& names) {
  std::vector<std::string> sorted(names.begin(), names.end());
  std::sort(sorted.begin(), sorted.end());
  std::string s = "[";
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i) s += ", ";
    s += "'" + sorted[i] + "'";
  }
  return s + "]";
}

// The shared half of A5 (TF's QueueBase::ValidateTupleCommon).
void check_common(const QueueSpec& spec, const Element& e) {
  if (e.size() != spec.num_components()) {
    throw invalid("Wrong number of components in tuple. Expected " + str(spec.num_components()) +
                  ", got " + str(e.size()));
  }
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (!e[i].initialized()) {
      throw invalid("Tuple component " + str(i) + " is an uninitialized tensor (moved from?)");
    }
    if (e[i].dtype() != spec.dtypes[i]) {
      throw invalid("Type mismatch in tuple component " + str(i) + ". Expected " +
                    std::string(to_string(spec.dtypes[i])) + ", got " +
                    std::string(to_string(e[i].dtype())));
    }
  }
}

void check_shape(const QueueSpec& spec, std::size_t i, const Shape& expected, const Shape& got) {
  const bool ok =
      spec.padding == Padding::kDynamic ? expected.compatible_with(got) : expected == got;
  if (!ok) {
    throw invalid("Shape mismatch in tuple component " + str(i) + ". Expected " +
                  expected.to_string() + ", got " + got.to_string());
  }
}

Error rank_error(const Shape& s, std::size_t component) {
  return invalid("Shape " + s.to_string() + " must have rank at least 1 (tuple component " +
                 str(component) + " of an enqueue_many)");
}

// Copies (numeric) or moves (string) `count` elements between two buffers of `dtype`.
void transfer(DType dtype, void* src, std::size_t src_offset, void* dst, std::size_t dst_offset,
              std::size_t count) {
  if (count == 0) return;
  if (dtype == DType::kString) {
    std::string* from = static_cast<std::string*>(src) + src_offset;
    std::move(from, from + count, static_cast<std::string*>(dst) + dst_offset);
    return;
  }
  const std::size_t sz = size(dtype);
  std::memcpy(static_cast<std::byte*>(dst) + dst_offset * sz,
              static_cast<const std::byte*>(src) + src_offset * sz, count * sz);
}

// Places `src` (shape s) at element offset `base` of `dst`, whose slots have shape `slot`
// (s[d] <= slot[d] for every d). Equal shapes: one transfer. Otherwise one transfer per
// innermost row of `src`, at the row's position inside the padded slot.
void place(Tensor& src, Tensor& dst, std::size_t base, const std::vector<std::int64_t>& slot) {
  const std::vector<std::int64_t>& s = src.shape().dims();
  if (s == slot) {
    transfer(src.dtype(), src.raw(), 0, dst.raw(), base, src.num_elements());
    return;
  }
  if (src.num_elements() == 0) return;
  const std::size_t rank = s.size();  // >= 1: scalars always equal their slot
  const std::size_t row = static_cast<std::size_t>(s[rank - 1]);
  // Strides of the slot, in elements.
  std::vector<std::size_t> stride(rank, 1);
  for (std::size_t d = rank - 1; d > 0; --d) {
    stride[d - 1] = stride[d] * static_cast<std::size_t>(slot[d]);
  }
  std::vector<std::int64_t> index(rank, 0);  // over the outer rank-1 dimensions of s
  std::size_t src_offset = 0;
  for (;;) {
    std::size_t dst_offset = base;
    for (std::size_t d = 0; d + 1 < rank; ++d)
      dst_offset += static_cast<std::size_t>(index[d]) * stride[d];
    transfer(src.dtype(), src.raw(), src_offset, dst.raw(), dst_offset, row);
    src_offset += row;
    // Next outer index (odometer over dimensions rank-2 .. 0).
    std::size_t d = rank - 1;
    while (d > 0) {
      --d;
      if (++index[d] < s[d]) break;
      index[d] = 0;
      if (d == 0) return;
    }
    if (rank == 1) return;
  }
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Element& e) {
  os << '(';
  for (std::size_t i = 0; i < e.size(); ++i) {
    if (i) os << ", ";
    os << e[i];
  }
  return os << ')';
}

// ---- QueueSpec ----

void QueueSpec::validate() const {
  if (dtypes.empty()) throw invalid("Queue needs at least one component: dtypes is empty");
  if (padding == Padding::kDynamic && shapes.size() != dtypes.size()) {
    throw invalid("Shapes must be provided for all components, but received " + str(dtypes.size()) +
                  " dtypes and " + str(shapes.size()) + " shapes.");
  }
  if (!shapes.empty() && shapes.size() != dtypes.size()) {
    throw invalid("Queue shapes must have the same length as dtypes");
  }
  if (!names.empty() && names.size() != dtypes.size()) {
    throw invalid("Queue names must have the same length as dtypes");
  }
  std::set<std::string_view> seen;
  for (const std::string& n : names) {
    if (!seen.insert(n).second) {
      throw invalid("Queue names must be unique: '" + n + "' appears more than once");
    }
  }
  if (padding == Padding::kNone && std::any_of(shapes.begin(), shapes.end(),
                                               [](const Shape& s) { return !s.fully_defined(); })) {
    throw invalid("All shapes must be fully defined: " + to_string(shapes));
  }
  if (std::any_of(shapes.begin(), shapes.end(), [](const Shape& s) { return !s.known_rank(); })) {
    throw invalid("All shapes must have a defined rank: " + to_string(shapes));
  }
}

void QueueSpec::check_element(const Element& e) const {
  check_common(*this, e);
  if (!specified_shapes()) return;
  for (std::size_t i = 0; i < e.size(); ++i) check_shape(*this, i, shapes[i], e[i].shape());
}

std::int64_t QueueSpec::check_batch(const Element& batch) const {
  check_common(*this, batch);
  const std::int64_t n = batch_size(batch);
  if (!specified_shapes()) return n;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    check_shape(*this, i, shapes[i].prepend(n), batch[i].shape());
  }
  return n;
}

Element QueueSpec::to_positional(NamedElement&& e) const {
  if (!named()) throw invalid("Queue must have names to enqueue a dictionary");
  std::vector<std::string> keys;
  keys.reserve(e.size());
  for (const auto& [key, tensor] : e) keys.push_back(key);
  if (py_list(keys) != py_list(names)) {
    throw invalid("Keys in dictionary to enqueue do not match names of Queue.  Dictionary: (" +
                  py_list(keys) + "), Queue: (" + py_list(names) + ")");
  }
  Element out;
  out.components.reserve(names.size());  // may throw: before anything is moved
  for (const std::string& n : names) out.components.push_back(std::move(e.find(n)->second));
  return out;
}

NamedElement QueueSpec::to_named(Element&& e) const {
  if (!named()) throw invalid("Queue must have names to return a dictionary");
  if (e.size() != names.size()) {
    throw invalid("Wrong number of components in tuple. Expected " + str(names.size()) + ", got " +
                  str(e.size()));
  }
  NamedElement out;
  for (std::size_t i = 0; i < names.size(); ++i) out.emplace(names[i], std::move(e[i]));
  return out;
}

// ---- split / stack ----

std::int64_t batch_size(const Element& batch) {
  if (batch.size() == 0) throw invalid("Expected at least one tensor");
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].shape().rank() < 1) throw rank_error(batch[i].shape(), i);
  }
  const std::int64_t n = batch[0].dim(0);
  for (std::size_t i = 1; i < batch.size(); ++i) {
    if (batch[i].dim(0) != n) {
      throw invalid("All input tensors must have the same size in the 0th dimension. Component " +
                    str(i) + " has " + str(batch[i].dim(0)) + ", and should have " + str(n));
    }
  }
  return n;
}

std::vector<Element> split_batch(const Element& batch, std::pmr::memory_resource* memory) {
  const std::size_t n = static_cast<std::size_t>(batch_size(batch));
  std::vector<Element> rows(n);
  for (Element& row : rows) row.components.reserve(batch.size());
  for (const Tensor& t : batch.components) {
    const Shape row_shape = t.shape().drop_first();
    const std::size_t per_row = static_cast<std::size_t>(row_shape.num_elements());
    for (std::size_t r = 0; r < n; ++r) {
      Tensor out(t.dtype(), row_shape, memory);
      if (t.dtype() == DType::kString) {
        const std::string* from = t.data<std::string>() + r * per_row;
        std::copy(from, from + per_row, out.data<std::string>());
      } else if (per_row != 0) {
        std::memcpy(out.raw(), static_cast<const std::byte*>(t.raw()) + r * out.byte_size(),
                    out.byte_size());
      }
      rows[r].components.push_back(std::move(out));
    }
  }
  return rows;
}

Element stack(std::span<Element> elements, const QueueSpec& spec,
              std::pmr::memory_resource* memory) {
  if (!spec.specified_shapes()) {
    throw invalid("DequeueMany and DequeueUpTo require the components to have specified shapes.");
  }
  const std::size_t n = elements.size();
  // Every output first (strong guarantee: nothing is moved out of `elements` before all
  // allocations succeeded), then the copies.
  std::vector<std::vector<std::int64_t>> slots;
  slots.reserve(spec.num_components());
  Element batch;
  batch.components.reserve(spec.num_components());
  for (std::size_t c = 0; c < spec.num_components(); ++c) {
    // The slot shape: the spec's, with each unknown dimension the batch maximum (A31).
    std::vector<std::int64_t>& slot = slots.emplace_back(spec.shapes.at(c).dims());
    for (std::size_t d = 0; d < slot.size(); ++d) {
      if (slot[d] != Shape::kUnknownDim) continue;
      std::int64_t most = 0;
      for (const Element& e : elements) most = std::max(most, e[c].dim(static_cast<int>(d)));
      slot[d] = most;
    }
    batch.components.emplace_back(spec.dtypes[c],
                                  Shape(slot).prepend(static_cast<std::int64_t>(n)), memory);
  }
  for (std::size_t c = 0; c < spec.num_components(); ++c) {
    Tensor& out = batch.components[c];
    const std::size_t per_slot = n == 0 ? 0 : out.num_elements() / n;
    for (std::size_t k = 0; k < n; ++k) place(elements[k][c], out, k * per_slot, slots[c]);
  }
  return batch;
}

Element allocate_batch(const QueueSpec& spec, std::size_t n, std::pmr::memory_resource* memory) {
  if (!spec.specified_shapes()) {
    throw invalid("DequeueMany and DequeueUpTo require the components to have specified shapes.");
  }
  Element batch;
  batch.components.reserve(spec.num_components());
  for (std::size_t c = 0; c < spec.num_components(); ++c) {
    if (!spec.shapes.at(c).fully_defined()) {
      throw invalid("All shapes must be fully defined: " + to_string(spec.shapes));
    }
    batch.components.emplace_back(spec.dtypes[c],
                                  spec.shapes[c].prepend(static_cast<std::int64_t>(n)), memory);
  }
  return batch;
}

void stack_into(std::span<Element> elements, Element& batch) noexcept {
  const std::size_t n = elements.size();
  for (Tensor& out : batch.components) {
    const std::size_t rows = static_cast<std::size_t>(out.dim(0));
    const std::size_t per_slot = rows == 0 ? 0 : out.num_elements() / rows;
    const std::size_t c = static_cast<std::size_t>(&out - batch.components.data());
    // Fully defined shapes: each element fills its slot in one transfer (no allocation).
    for (std::size_t k = 0; k < n; ++k) {
      Tensor& src = elements[k][c];
      transfer(src.dtype(), src.raw(), 0, out.raw(), k * per_slot, src.num_elements());
    }
    if (n < rows) out.truncate_rows(static_cast<std::int64_t>(n));  // cannot throw: 0 <= n < rows
  }
}

// ---- E7 ----

std::vector<Shape> infer_shapes(std::span<const std::vector<Shape>> sources, EnqueueMode mode,
                                std::span<const Shape> explicit_shapes, Padding padding) {
  if (sources.empty() || sources[0].empty()) throw invalid("Expected at least one tensor");
  const std::size_t components = sources[0].size();
  std::vector<Shape> shapes;
  if (!explicit_shapes.empty()) {
    if (explicit_shapes.size() != components) {
      throw invalid("Queue shapes must have the same length as dtypes");
    }
    shapes.assign(explicit_shapes.begin(), explicit_shapes.end());
  } else {
    // One shape per component: that of the first source, checked against the others.
    auto element_shape = [mode](const Shape& s, std::size_t c) {
      if (!s.known_rank()) {
        throw invalid("Cannot infer Tensor's rank: component " + str(c) + " has shape " +
                      s.to_string());
      }
      if (mode == EnqueueMode::kOne) return s;
      if (s.rank() < 1) throw rank_error(s, c);
      return s.drop_first();
    };
    for (std::size_t c = 0; c < components; ++c) shapes.push_back(element_shape(sources[0][c], c));
    for (const std::vector<Shape>& source : sources.subspan(1)) {
      if (source.size() != components) {
        throw invalid("Wrong number of components in tuple. Expected " + str(components) +
                      ", got " + str(source.size()));
      }
      for (std::size_t c = 0; c < components; ++c) {
        const Shape s = element_shape(source[c], c);
        if (!shapes[c].compatible_with(s)) {
          throw invalid("Shapes " + shapes[c].to_string() + " and " + s.to_string() +
                        " are not compatible (component " + str(c) + ")");
        }
      }
    }
  }
  if (std::any_of(shapes.begin(), shapes.end(), [](const Shape& s) { return !s.known_rank(); })) {
    throw invalid("All shapes must have a defined rank: " + to_string(shapes));
  }
  if (padding == Padding::kNone && std::any_of(shapes.begin(), shapes.end(),
                                               [](const Shape& s) { return !s.fully_defined(); })) {
    throw invalid("All shapes must be fully defined: " + to_string(shapes));
  }
  return shapes;
}

std::vector<Shape> infer_shapes(std::span<const Element> sources, EnqueueMode mode,
                                std::span<const Shape> explicit_shapes, Padding padding) {
  std::vector<std::vector<Shape>> shapes;
  shapes.reserve(sources.size());
  for (const Element& e : sources) {
    std::vector<Shape>& s = shapes.emplace_back();
    for (const Tensor& t : e.components) s.push_back(t.shape());
  }
  return infer_shapes(std::span<const std::vector<Shape>>(shapes), mode, explicit_shapes, padding);
}

}  // namespace conveyor
