// Walks docs/errors.md (issue 7, "Bad input"): every row's case runs against fresh filled
// queues; the error must have the row's kind and contain its message text, and afterwards every
// queue of the fixture must hold exactly what it held (a rejected call changes nothing).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "engine/batching.h"
#include "engine/coordinator.h"
#include "engine/dataset.h"
#include "engine/element.h"
#include "engine/fifo_queue.h"
#include "engine/looper_thread.h"
#include "engine/queue_runner.h"
#include "engine/queue_runner_def.h"
#include "engine/record_reader.h"
#include "engine/session.h"
#include "engine/shuffle_queue.h"
#include "engine/tensor.h"
#include "engine/tensor_queue.h"
#include "engine/thread.h"
#include "topology/placement.h"
#include "topology/topology.h"

namespace conveyor {
namespace {

// Queues with known contents; untouched() says whether they still hold exactly that.
struct Fixture {
  Session session;
  std::shared_ptr<FifoQueue<int>> fifo = session.fifo_queue<int>(4, "fifo", "shared_fifo");
  std::shared_ptr<ShuffleQueue<int>> shuffle =
      session.shuffle_queue<int>(4, 1, 7, "shuffle", "shared_shuffle");
  TensorQueue<> tq{QueueSpec{{DType::kInt64}, {Shape{2}}}, 4, "tq"};
  TensorQueue<> named{QueueSpec{{DType::kInt64}, {Shape{}}, {"x"}}, 4, "named"};
  TensorQueue<> unshaped{QueueSpec{{DType::kInt64}}, 4, "unshaped"};

  static Element row(std::int64_t a, std::int64_t b) {
    Element e;
    e.components.push_back(Tensor::from<std::int64_t>(Shape{2}, {a, b}));
    return e;
  }
  static Element scalar(std::int64_t v) {
    Element e;
    e.components.push_back(Tensor::scalar<std::int64_t>(v));
    return e;
  }

  Fixture() {
    session.add_op("put", [] {});
    for (int v : {1, 2}) {
      EXPECT_EQ(fifo->enqueue(int(v)), Status::kOk);
      EXPECT_EQ(shuffle->enqueue(int(v)), Status::kOk);
    }
    tq.enqueue(row(1, 2));
    tq.enqueue(row(3, 4));
    named.enqueue(NamedElement{{"x", Tensor::scalar<std::int64_t>(5)}});
    unshaped.enqueue(scalar(6));
  }

  // Drains every queue and compares with what the constructor put in.
  std::string untouched() {
    std::string problems;
    int v = 0;
    std::vector<int> f, s;
    (void)fifo->close();
    while (fifo->dequeue(v) == Status::kOk) f.push_back(v);
    (void)shuffle->close();
    while (shuffle->dequeue(v) == Status::kOk) s.push_back(v);
    std::sort(s.begin(), s.end());
    if (f != std::vector<int>{1, 2}) problems += "fifo changed; ";
    if (s != std::vector<int>{1, 2}) problems += "shuffle changed; ";
    tq.close();
    Element expected;
    expected.components.push_back(Tensor::from<std::int64_t>(Shape{2, 2}, {1, 2, 3, 4}));
    if (tq.size_approx() != 2 || !(tq.dequeue_many(2) == expected)) problems += "tq changed; ";
    if (named.size_approx() != 1 || !(named.dequeue() == scalar(5))) problems += "named changed; ";
    if (unshaped.size_approx() != 1 || !(unshaped.dequeue() == scalar(6))) {
      problems += "unshaped changed; ";
    }
    return problems;
  }
};

using Case = std::function<void(Fixture&)>;

std::map<std::string, Case> cases() {
  using namespace std::chrono_literals;
  std::map<std::string, Case> c;
  c["E01"] = [](Fixture&) { FifoQueue<int> q(0); };
  c["E02"] = [](Fixture&) { FifoQueue<int> q(-1); };
  c["E03"] = [](Fixture&) { FifoQueue<int> q(4, "q", nullptr); };
  c["E04"] = [](Fixture&) { FifoQueue<int, Spsc> q(0); };
  c["E05"] = [](Fixture&) { ShuffleQueue<int> q(0, 0); };
  c["E06"] = [](Fixture&) { ShuffleQueue<int> q(10, -1); };
  c["E07"] = [](Fixture&) { ShuffleQueue<int> q(10, 10); };
  c["E08"] = [](Fixture&) { ShuffleQueue<int> q(10, 0, 1, "q", 65); };
  c["E09"] = [](Fixture&) { ShuffleQueue<int> q(10, 0, 1, "q", 1, nullptr); };
  c["E10"] = [](Fixture&) { QueueSpec{}.validate(); };
  c["E11"] = [](Fixture&) { QueueSpec{{DType::kInt64}, {Shape{}, Shape{}}}.validate(); };
  c["E12"] = [](Fixture&) { QueueSpec{{DType::kInt64}, {}, {"a", "b"}}.validate(); };
  c["E13"] = [](Fixture&) {
    QueueSpec{{DType::kInt64, DType::kInt64}, {}, {"x", "x"}}.validate();
  };
  c["E14"] = [](Fixture&) { QueueSpec{{DType::kInt64}, {Shape{-1}}}.validate(); };
  c["E15"] = [](Fixture&) { QueueSpec{{DType::kInt64}, {}, {}, Padding::kDynamic}.validate(); };
  c["E16"] = [](Fixture&) {
    QueueSpec{{DType::kInt64}, {Shape::unknown_rank()}, {}, Padding::kDynamic}.validate();
  };
  c["E17"] = [](Fixture& f) {
    Element e = Fixture::row(0, 0);
    e.components.push_back(Tensor::scalar<std::int64_t>(0));
    f.tq.enqueue(std::move(e));
  };
  c["E18"] = [](Fixture& f) {
    Element e;
    e.components.push_back(Tensor(DType::kFloat32, Shape{2}));
    f.tq.enqueue(std::move(e));
  };
  c["E19"] = [](Fixture& f) {
    Element e;
    e.components.push_back(Tensor(DType::kInt64, Shape{3}));
    f.tq.enqueue(std::move(e));
  };
  c["E20"] = [](Fixture& f) {
    Element e = Fixture::row(0, 0);
    Tensor stolen = std::move(e.components[0]);
    f.tq.enqueue(std::move(e));
  };
  c["E21"] = [](Fixture& f) { f.tq.enqueue_many(Fixture::scalar(1)); };
  c["E22"] = [](Fixture& f) {
    TensorQueue<> two(QueueSpec{{DType::kInt64, DType::kInt64}, {Shape{}, Shape{}}}, 4, "two");
    Element b;
    b.components.push_back(Tensor(DType::kInt64, Shape{2}));
    b.components.push_back(Tensor(DType::kInt64, Shape{3}));
    two.enqueue_many(b);
    (void)f;
  };
  c["E23"] = [](Fixture& f) {
    Element b;
    b.components.push_back(Tensor(DType::kInt64, Shape{1, 3}));
    f.tq.enqueue_many(b);
  };
  c["E24"] = [](Fixture& f) { (void)f.tq.dequeue_many(-1); };
  c["E25"] = [](Fixture& f) { (void)f.tq.dequeue_up_to(-1); };
  c["E26"] = [](Fixture& f) { (void)f.unshaped.dequeue_many(1); };
  c["E27"] = [](Fixture& f) {
    f.tq.enqueue(NamedElement{{"x", Tensor(DType::kInt64, Shape{2})}});
  };
  c["E28"] = [](Fixture& f) { f.named.enqueue(Fixture::scalar(1)); };
  c["E29"] = [](Fixture& f) {
    f.named.enqueue(NamedElement{{"y", Tensor::scalar<std::int64_t>(1)}});
  };
  c["E30"] = [](Fixture&) {
    TensorQueue<> q(QueueSpec{{DType::kInt64}}, std::shared_ptr<FifoQueue<Element>>());
  };
  c["E31"] = [](Fixture&) {
    TensorQueue<> q(QueueSpec{{DType::kInt64}}, std::make_shared<FifoQueue<Element>>(2),
                    nullptr);
  };
  c["E32"] = [](Fixture&) { Tensor t(DType::kInt64, Shape{-1, 2}); };
  c["E33"] = [](Fixture&) { Shape s(std::vector<std::int64_t>{-2}); };
  c["E34"] = [](Fixture&) { (void)Tensor::from<std::int64_t>(Shape{2}, {1, 2, 3}); };
  c["E35"] = [](Fixture&) { (void)Tensor::scalar<std::int64_t>(1).data<float>(); };
  c["E36"] = [](Fixture&) { Tensor(DType::kInt64, Shape{2}).truncate_rows(5); };
  c["E37"] = [](Fixture& f) { f.session.add_op("", [] {}); };
  c["E38"] = [](Fixture& f) { f.session.add_op("put", [] {}); };
  c["E39"] = [](Fixture& f) { f.session.run("nope"); };
  c["E40"] = [](Fixture& f) { (void)f.session.fifo_queue<int>(0, "q0"); };
  c["E41"] = [](Fixture& f) { (void)f.session.fifo_queue<int>(4, ""); };
  c["E42"] = [](Fixture& f) { (void)f.session.fifo_queue<int>(8, "fifo", "shared_fifo"); };
  c["E43"] = [](Fixture& f) {
    (void)f.session.shuffle_queue<int>(4, 2, 7, "shuffle", "shared_shuffle");
  };
  c["E44"] = [](Fixture& f) {
    (void)f.session.shuffle_queue<int>(4, 1, 8, "shuffle", "shared_shuffle");
  };
  c["E45"] = [](Fixture&) {
    SessionOptions o;
    o.plan = topology::Plan();
    Session s(o);
  };
  c["E46"] = [](Fixture&) { QueueRunner r("fifo", {}); };
  c["E47"] = [](Fixture&) { QueueRunner r("fifo", {""}); };
  c["E48"] = [](Fixture&) { QueueRunner r("fifo", {"put"}, {}, {}, std::vector<ErrorKind>{}); };
  c["E49"] = [](Fixture&) {
    QueueRunnerDef def;
    def.queue_name = "fifo";
    QueueRunner r(def);
  };
  c["E50"] = [](Fixture& f) {
    QueueRunner r("fifo", {"missing"});
    (void)r.create_threads(f.session);
  };
  c["E51"] = [](Fixture&) {
    QueueRunner r("fifo", {"put"});
    r.add_error_callback(nullptr);
  };
  c["E52"] = [](Fixture&) { (void)QueueRunnerDef::from_wire("\xff\xff"); };
  c["E53"] = [](Fixture&) { (void)from_tf_code(5); };
  c["E54"] = [](Fixture&) {
    Coordinator coord;
    coord.register_thread(Thread());
  };
  c["E55"] = [](Fixture&) {
    Coordinator coord;
    coord.join({nullptr});
  };
  c["E56"] = [](Fixture&) {
    Coordinator coord;
    LooperThread t(coord, std::chrono::nanoseconds(-1), [] {});
  };
  c["E57"] = [](Fixture& f) {
    BatchOptions o;
    o.batch_size = 0;
    (void)batch(f.session, [] { return 1; }, o);
  };
  c["E58"] = [](Fixture& f) {
    BatchOptions o;
    o.capacity = 0;
    (void)batch(f.session, [] { return 1; }, o);
  };
  c["E59"] = [](Fixture& f) {
    BatchOptions o;
    o.num_threads = 0;
    (void)batch(f.session, [] { return 1; }, o);
  };
  c["E60"] = [](Fixture& f) {
    (void)batch_join(f.session, std::vector<std::function<int()>>{});
  };
  c["E61"] = [](Fixture& f) {
    ShuffleBatchOptions o;
    o.capacity = 4;
    o.min_after_dequeue = 4;
    (void)shuffle_batch(f.session, [] { return 1; }, o);
  };
  c["E62"] = [](Fixture&) { EpochLimit limit(0); };
  c["E63"] = [](Fixture& f) { (void)string_input_producer(f.session, {}); };
  c["E64"] = [](Fixture& f) { (void)range_input_producer(f.session, 0); };
  c["E65"] = [](Fixture&) { TFRecordReader r("/nonexistent/conveyor-errors.tfrecord"); };
  c["E66"] = [](Fixture&) { TFRecordReader r("/dev/null", 8); };
  c["E67"] = [](Fixture&) { TextLineReader r("/nonexistent/conveyor-errors.txt"); };
  c["E68"] = [](Fixture&) {
    DatasetSpec spec;
    spec.files = 0;
    (void)generate_dataset("/nonexistent/conveyor-errors", spec);
  };
  c["E69"] = [](Fixture&) { (void)topology::parse_policy("sideways"); };
  c["E70"] = [](Fixture&) { (void)topology::Topology::synthetic("pack:x"); };
  c["E71"] = [](Fixture&) { (void)topology::Topology::from_xml("/nonexistent/topo.xml"); };
  c["E72"] = [](Fixture&) {
    const auto topo = topology::Topology::synthetic("core:4 pu:1");
    topology::PlanRequest r;
    r.policy = topology::Policy::kExplicit;
    r.explicit_pus = {0, 9};
    (void)topology::make_plan(topo, r);
  };
  c["E73"] = [](Fixture&) {
    const auto topo = topology::Topology::synthetic("core:4 pu:1");
    topology::PlanRequest r;
    r.producers = 0;
    (void)topology::make_plan(topo, r);
  };
  return c;
}

struct Row {
  std::string id, entry, argument, value, kind, message;
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(' ');
  const auto e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<Row> table() {
  std::ifstream in(CONVEYOR_DOCS_DIR "/errors.md");
  EXPECT_TRUE(in) << "cannot read " << CONVEYOR_DOCS_DIR "/errors.md";
  std::vector<Row> rows;
  std::string line;
  // A row: "| E<digits> | ..." (no <regex>: GCC 12 warns inside it under ASan).
  const auto is_row = [](const std::string& l) {
    if (l.rfind("| E", 0) != 0) return false;
    std::size_t i = 3;
    while (i < l.size() && l[i] >= '0' && l[i] <= '9') ++i;
    return i > 3 && l.compare(i, 2, " |") == 0;
  };
  while (std::getline(in, line)) {
    if (!is_row(line)) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    std::string cell;
    while (std::getline(ss, cell, '|')) cells.push_back(trim(cell));
    if (!cells.empty() && cells.back().empty()) cells.pop_back();
    EXPECT_EQ(cells.size(), 6u) << line;
    if (cells.size() != 6) continue;
    rows.push_back({cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]});
  }
  return rows;
}

// The kind name of what `e` holds, as the table writes it.
std::string kind_name(const std::exception_ptr& e, std::string& message) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    message = err.message();
    return std::string(to_string(err.kind()));
  } catch (const topology::Error& err) {
    message = err.what();
    return "topology::Error";
  } catch (const std::exception& err) {
    message = err.what();
    return "std::exception";
  }
}

TEST(ErrorsTable, EveryRowFailsAsDocumentedAndChangesNothing) {
  const std::vector<Row> rows = table();
  ASSERT_GE(rows.size(), 70u);
  const std::map<std::string, Case> all = cases();
  for (const Row& row : rows) {
    SCOPED_TRACE(row.id + " " + row.entry + " " + row.argument + " = " + row.value);
    const auto it = all.find(row.id);
    ASSERT_NE(it, all.end()) << "no case in errors_test.cc for " << row.id;
    Fixture fixture;
    std::exception_ptr thrown;
    try {
      it->second(fixture);
    } catch (...) {
      thrown = std::current_exception();
    }
    ASSERT_TRUE(thrown) << "nothing thrown";
    std::string message;
    const std::string kind = kind_name(thrown, message);
    EXPECT_EQ(kind, row.kind) << message;
    EXPECT_NE(message.find(row.message), std::string::npos)
        << "message: " << message << "\n  expected to contain: " << row.message;
    EXPECT_EQ(fixture.untouched(), "");
  }
}

TEST(ErrorsTable, EveryCaseHasARow) {
  std::map<std::string, bool> documented;
  for (const Row& row : table()) {
    EXPECT_FALSE(documented[row.id]) << row.id << " appears twice";
    documented[row.id] = true;
  }
  for (const auto& [id, c] : cases()) EXPECT_TRUE(documented[id]) << id << " has no row";
}

}  // namespace
}  // namespace conveyor
