// Record I/O: CRC32C (published vectors, hardware vs portable), TextLineReader edge cases,
// TFRecord round trips and byte-exact frames built from the format's description, corruption and
// truncation reported as DataLoss at the bad record's offset, and the dataset generator.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "engine/crc32c.h"
#include "engine/dataset.h"
#include "engine/queue_runner_def.h"
#include "engine/record_reader.h"
#include "engine/status.h"
#include "tests/test_errors.h"
#include "tests/test_scale.h"

namespace conveyor {
namespace {

namespace fs = std::filesystem;
using testutil::message_of;
using testutil::thrown_by;

constexpr std::size_t kDefaultBuffer = internal::kFileBufferSize;

// ---- helpers ------------------------------------------------------------------------------------

// A bit-at-a-time CRC32C straight from the definition (reflected polynomial 0x82F63B78), sharing
// no code with engine/crc32c.cc.
std::uint32_t reference_crc32c(std::string_view data) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

// TFRecord's mask, written out from the format's description.
std::uint32_t reference_mask(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string le64(std::uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i, v >>= 8) s += static_cast<char>(v & 0xff);
  return s;
}
std::string le32(std::uint32_t v) {
  std::string s;
  for (int i = 0; i < 4; ++i, v >>= 8) s += static_cast<char>(v & 0xff);
  return s;
}

// One TFRecord frame built by hand from the format's description.
std::string hand_frame(std::string_view data) {
  const std::string length = le64(data.size());
  return length + le32(reference_mask(reference_crc32c(length))) + std::string(data) +
         le32(reference_mask(reference_crc32c(data)));
}

std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::string kind_name(const std::exception_ptr& e) { return std::string(to_string(kind_of(e))); }

// A fresh directory per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("record_io_test-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + "-" +
            info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string write_file(const std::string& name, std::string_view bytes) const {
    const std::string p = path(name);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(out.good()) << p;
    return p;
  }

  static std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path dir_;
};

template <class Reader>
std::vector<Record> read_all(Reader& reader) {
  std::vector<Record> out;
  while (auto r = reader.next()) out.push_back(std::move(*r));
  return out;
}

// ---- CRC32C -------------------------------------------------------------------------------------

std::vector<crc32c::Implementation> available_implementations() {
  std::vector<crc32c::Implementation> impls{crc32c::Implementation::kPortable};
  if (crc32c::available(crc32c::Implementation::kHardware)) {
    impls.push_back(crc32c::Implementation::kHardware);
  }
  return impls;
}

std::uint32_t crc_with(crc32c::Implementation impl, std::string_view data) {
  return crc32c::extend(impl, 0, data.data(), data.size());
}

TEST(Crc32c, PublishedVectorsRfc3720B4) {
  std::string zeros(32, '\x00'), ones(32, '\xff'), ascending(32, '\0'), descending(32, '\0');
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  // RFC 3720 B.4's iSCSI SCSI Read (10) command PDU.
  const unsigned char pdu_bytes[48] = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  const std::string pdu(reinterpret_cast<const char*>(pdu_bytes), sizeof pdu_bytes);

  for (const auto impl : available_implementations()) {
    SCOPED_TRACE(impl == crc32c::Implementation::kHardware ? "hardware" : "portable");
    EXPECT_EQ(crc_with(impl, zeros), 0x8A9136AAu);
    EXPECT_EQ(crc_with(impl, ones), 0x62A8AB43u);
    EXPECT_EQ(crc_with(impl, ascending), 0x46DD794Eu);
    EXPECT_EQ(crc_with(impl, descending), 0x113FDB5Cu);
    EXPECT_EQ(crc_with(impl, pdu), 0xD9963A56u);
    EXPECT_EQ(crc_with(impl, "123456789"), 0xE3069283u);
    EXPECT_EQ(crc_with(impl, ""), 0u);
  }
  EXPECT_EQ(crc32c::value("123456789"), 0xE3069283u);
  EXPECT_EQ(reference_crc32c("123456789"), 0xE3069283u);  // the test's own reference
}

TEST(Crc32c, ImplementationsAgreeOnEveryLengthAndAlignment) {
  if (!crc32c::available(crc32c::Implementation::kHardware)) {
    GTEST_SKIP() << "no SSE4.2 on this CPU: only the portable implementation runs";
  }
  EXPECT_EQ(crc32c::best(), crc32c::Implementation::kHardware);
  const std::string buffer = random_bytes(1000 + 16, 42);
  for (std::size_t align = 0; align < 16; ++align) {
    for (std::size_t n = 0; n <= 1000; ++n) {
      const char* p = buffer.data() + align;
      const std::uint32_t hw = crc32c::extend(crc32c::Implementation::kHardware, 0, p, n);
      const std::uint32_t sw = crc32c::extend(crc32c::Implementation::kPortable, 0, p, n);
      ASSERT_EQ(hw, sw) << "length " << n << " at alignment " << align;
    }
  }
  // Against the bit-at-a-time reference on a few lengths.
  for (std::size_t n : {0, 1, 7, 8, 9, 63, 64, 65, 999}) {
    EXPECT_EQ(crc32c::value(buffer.data() + 3, n),
              reference_crc32c(std::string_view(buffer.data() + 3, n)));
  }
}

TEST(Crc32c, ExtendContinuesAChecksumPieceByPiece) {
  const std::string data = random_bytes(777, 7);
  std::mt19937 rng(3);
  for (const auto impl : available_implementations()) {
    const std::uint32_t whole = crc_with(impl, data);
    for (int trial = 0; trial < 200; ++trial) {
      const std::size_t cut = rng() % (data.size() + 1);
      const std::uint32_t head = crc32c::extend(impl, 0, data.data(), cut);
      EXPECT_EQ(crc32c::extend(impl, head, data.data() + cut, data.size() - cut), whole);
    }
  }
  EXPECT_EQ(crc32c::extend(crc32c::value("1234"), "56789"), 0xE3069283u);
}

TEST(Crc32c, MaskIsTensorFlowsAndUnmaskInvertsIt) {
  std::mt19937 rng(5);
  for (int i = 0; i < 10000; ++i) {
    const std::uint32_t c = static_cast<std::uint32_t>(rng());
    EXPECT_EQ(crc32c::mask(c), reference_mask(c));
    EXPECT_EQ(crc32c::unmask(crc32c::mask(c)), c);
    EXPECT_EQ(crc32c::unmask(crc32c::unmask(crc32c::mask(crc32c::mask(c)))), c);
  }
  // A data CRC taken from a file TensorFlow wrote: the record of
  // tf.compat.v1.Event(file_version=b"CRC test, one two"), as quoted by TensorBoard's Rust data
  // server (tensorboard/data/server/masked_crc.rs).
  const std::string tf_event("\x1a\x11" "CRC test, one two");
  EXPECT_EQ(crc32c::mask(crc32c::value(tf_event)), 0x5794d08au);
  EXPECT_EQ(tfrecord_frame(tf_event).substr(12 + tf_event.size()), le32(0x5794d08au));

  const std::uint32_t crc = crc32c::value("foo");
  EXPECT_NE(crc32c::mask(crc), crc);
  EXPECT_NE(crc32c::mask(crc32c::mask(crc)), crc);
  static_assert(crc32c::mask(0) == 0xa282ead8u);
}

// Not an assertion (no timing assertions in tests): a printed sanity figure.
TEST(Crc32c, PrintsThroughput) {
  const std::string data = random_bytes(std::size_t{4} << 20, 1);
  for (const auto impl : available_implementations()) {
    const int reps = static_cast<int>(testing::kScale > 1 ? 16 : 1);
    std::uint32_t sink = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) sink += crc_with(impl, data);
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    std::printf("crc32c %s: %.2f GB/s (sink %08x)\n",
                impl == crc32c::Implementation::kHardware ? "hardware" : "portable",
                static_cast<double>(data.size()) * reps / dt.count() / 1e9, sink);
  }
}

// ---- error kinds --------------------------------------------------------------------------------

TEST(RecordErrors, DataLossIsTensorFlowsDataLoss) {
  EXPECT_EQ(to_string(ErrorKind::kDataLoss), "DataLoss");
  EXPECT_EQ(to_tf_code(ErrorKind::kDataLoss), 15);  // tensorflow.error.DATA_LOSS
  EXPECT_EQ(from_tf_code(15), ErrorKind::kDataLoss);
  EXPECT_STREQ(Error(ErrorKind::kDataLoss, "x").what(), "DataLoss: x");
}

// ---- TextLineReader -----------------------------------------------------------------------------

using TextLineReaderTest = TempDirTest;

static_assert(!std::is_copy_constructible_v<TextLineReader>);
static_assert(std::is_nothrow_move_constructible_v<TextLineReader>);
static_assert(!std::is_copy_constructible_v<TFRecordReader>);
static_assert(std::is_nothrow_move_constructible_v<TFRecordReader>);
static_assert(!std::is_copy_constructible_v<TFRecordWriter>);
static_assert(std::is_nothrow_move_constructible_v<TFRecordWriter>);

TEST_F(TextLineReaderTest, EmptyFileHasNoRecords) {
  TextLineReader reader(write_file("empty.txt", ""));
  EXPECT_EQ(reader.next(), std::nullopt);
  EXPECT_EQ(reader.next(), std::nullopt);
  EXPECT_EQ(reader.offset(), 0u);
}

TEST_F(TextLineReaderTest, LinesEmptyLinesAndALastLineWithoutNewline) {
  TextLineReader reader(write_file("a.txt", "a\nbb\n\nccc"));
  const std::vector<Record> expected{{"a", 0}, {"bb", 2}, {"", 5}, {"ccc", 6}};
  EXPECT_EQ(read_all(reader), expected);
  EXPECT_EQ(reader.next(), std::nullopt);
  EXPECT_EQ(reader.offset(), 9u);

  // A final "\n" ends the last line; it does not start an empty one.
  TextLineReader b(write_file("b.txt", "x\n"));
  EXPECT_EQ(read_all(b), (std::vector<Record>{{"x", 0}}));
  TextLineReader c(write_file("c.txt", "\n"));
  EXPECT_EQ(read_all(c), (std::vector<Record>{{"", 0}}));
  TextLineReader d(write_file("d.txt", "\n\n"));
  EXPECT_EQ(read_all(d), (std::vector<Record>{{"", 0}, {"", 1}}));
}

TEST_F(TextLineReaderTest, CrlfReadsAsLfAndOnlyOneTrailingCrIsStripped) {
  TextLineReader reader(write_file("crlf.txt", "a\r\nb\r\n\r\nc\r"));
  EXPECT_EQ(read_all(reader),
            (std::vector<Record>{{"a", 0}, {"b", 3}, {"", 6}, {"c", 8}}));
  TextLineReader inner(write_file("inner.txt", "x\ry\r\r\n\rz\n"));
  EXPECT_EQ(read_all(inner), (std::vector<Record>{{"x\ry\r", 0}, {"\rz", 6}}));
  // A last line that is a lone "\r" is no record (TF's InputBuffer::ReadLine); "\r\n" is one.
  TextLineReader lone(write_file("lone.txt", "a\n\r"));
  EXPECT_EQ(read_all(lone), (std::vector<Record>{{"a", 0}}));
  EXPECT_EQ(lone.offset(), 3u);
  TextLineReader crlf_only(write_file("crlf_only.txt", "\r\n"));
  EXPECT_EQ(read_all(crlf_only), (std::vector<Record>{{"", 0}}));
}

TEST_F(TextLineReaderTest, LinesSpanBufferRefillsAtEverySplit) {
  // Every buffer size from 1 up puts the refill boundary at every position, "\r|\n" included.
  std::string text;
  std::vector<Record> expected;
  std::mt19937 rng(11);
  for (int line = 0; line < 40; ++line) {
    std::string s(rng() % 23, 'a');
    for (char& c : s) c = static_cast<char>('a' + rng() % 26);
    expected.push_back({s, text.size()});
    text += s;
    text += (line % 3 == 0) ? "\r\n" : "\n";
  }
  text += "tail";
  expected.push_back({"tail", text.size() - 4});
  const std::string p = write_file("split.txt", text);
  for (std::size_t buffer = 1; buffer <= 40; ++buffer) {
    TextLineReader reader(p, buffer);
    ASSERT_EQ(read_all(reader), expected) << "buffer size " << buffer;
  }
}

TEST_F(TextLineReaderTest, LongLinesAcrossTheDefaultBuffer) {
  const std::string a(3 * kDefaultBuffer + 17, 'a'), b(kDefaultBuffer - 1, 'b'),
      c(kDefaultBuffer, 'c');
  TextLineReader reader(write_file("long.txt", a + "\n" + b + "\r\n" + c));
  const std::vector<Record> expected{
      {a, 0}, {b, a.size() + 1}, {c, a.size() + 1 + b.size() + 2}};
  EXPECT_EQ(read_all(reader), expected);
}

TEST_F(TextLineReaderTest, MovedReaderContinuesWhereItWas) {
  TextLineReader reader(write_file("m.txt", "1\n2\n3\n"));
  EXPECT_EQ(reader.next()->data, "1");
  TextLineReader moved(std::move(reader));
  EXPECT_EQ(moved.next()->data, "2");
  TextLineReader assigned(write_file("other.txt", "z\n"));
  assigned = std::move(moved);
  EXPECT_EQ(assigned.next(), (Record{"3", 4}));
  EXPECT_EQ(assigned.next(), std::nullopt);
}

TEST_F(TextLineReaderTest, MissingFileIsInvalidArgumentNamingThePath) {
  const std::string p = path("no-such-file.txt");
  const auto e = thrown_by([&] { TextLineReader r(p); });
  EXPECT_EQ(kind_of(e), ErrorKind::kInvalidArgument);
  EXPECT_NE(message_of(e).find("'" + p + "'"), std::string::npos) << message_of(e);
  EXPECT_NE(message_of(e).find("No such file"), std::string::npos) << message_of(e);
  EXPECT_EQ(kind_of(thrown_by([&] { TextLineReader r(write_file("x", ""), 0); })),
            ErrorKind::kInvalidArgument);
}

// ---- TFRecord -----------------------------------------------------------------------------------

using TFRecordTest = TempDirTest;

TEST_F(TFRecordTest, WriterProducesTheFormatByteForByte) {
  // "hello": length 5, masked CRC of the 8 length bytes, data, masked CRC of the data; all
  // computed here from the format's description, so a file TensorFlow wrote reads as it is.
  const std::string hello = hand_frame("hello");
  ASSERT_EQ(hello.size(), 12u + 5u + 4u);
  EXPECT_EQ(hello.substr(0, 8), std::string("\x05\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(hello.substr(12, 5), "hello");
  EXPECT_EQ(tfrecord_frame("hello"), hello);
  EXPECT_EQ(tfrecord_frame(""), hand_frame(""));

  const std::string p = path("hello.tfrecord");
  {
    TFRecordWriter writer(p);
    writer.write("hello");
    writer.write("");
    writer.write("world!");
    EXPECT_EQ(writer.offset(), 21u + 16u + 22u);
    writer.close();
    writer.close();  // a second close is a no-op
  }
  EXPECT_EQ(read_file(p), hello + hand_frame("") + hand_frame("world!"));
}

TEST_F(TFRecordTest, ReadsAHandBuiltFile) {
  const std::string p = write_file("hand.tfrecord", hand_frame("hello") + hand_frame("") +
                                                        hand_frame(std::string(1000, 'x')));
  TFRecordReader reader(p);
  const std::vector<Record> expected{{"hello", 0}, {"", 21}, {std::string(1000, 'x'), 37}};
  EXPECT_EQ(read_all(reader), expected);
  EXPECT_EQ(reader.next(), std::nullopt);
  EXPECT_EQ(reader.offset(), 37u + 1016u);
}

TEST_F(TFRecordTest, EmptyFileHasNoRecords) {
  TFRecordReader reader(write_file("empty.tfrecord", ""));
  EXPECT_EQ(reader.next(), std::nullopt);
}

TEST_F(TFRecordTest, RoundTripAroundTheBufferSize) {
  const std::size_t b = kDefaultBuffer;
  std::vector<std::size_t> sizes{0,         1,         2,     100,           b - 17, b - 16,
                                 b - 15,    b - 1,     b,     b + 1,         b + 16, 3 * b + 5,
                                 0,         1,         b / 2, std::size_t{5} << 20};
  const std::string p = path("sizes.tfrecord");
  std::vector<Record> expected;
  {
    TFRecordWriter writer(p);
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      expected.push_back({random_bytes(sizes[i], i), writer.offset()});
      writer.write(expected.back().data);
    }
    writer.close();
  }
  for (std::size_t buffer : {kDefaultBuffer, std::size_t{16}, std::size_t{4097}}) {
    TFRecordReader reader(p, buffer);
    const std::vector<Record> got = read_all(reader);
    ASSERT_EQ(got.size(), expected.size()) << "buffer " << buffer;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].offset, expected[i].offset) << "record " << i;
      EXPECT_TRUE(got[i].data == expected[i].data) << "record " << i << " buffer " << buffer;
    }
    EXPECT_EQ(reader.offset(), fs::file_size(p));
  }
}

TEST_F(TFRecordTest, ManySmallRecordsWithSmallBuffers) {
  std::mt19937 rng(9);
  std::string bytes;
  std::vector<Record> expected;
  for (int i = 0; i < 500; ++i) {
    expected.push_back({random_bytes(rng() % 70, 100 + i), bytes.size()});
    bytes += tfrecord_frame(expected.back().data);
  }
  const std::string p = write_file("small.tfrecord", bytes);
  for (std::size_t buffer = 16; buffer <= 90; ++buffer) {
    TFRecordReader reader(p, buffer);
    ASSERT_EQ(read_all(reader), expected) << "buffer " << buffer;
  }
}

TEST_F(TFRecordTest, MovedReaderAndWriterKeepTheirPlace) {
  const std::string p = path("move.tfrecord");
  TFRecordWriter writer(p);
  writer.write("a");
  TFRecordWriter moved(std::move(writer));
  moved.write("b");
  moved.close();
  TFRecordReader reader(p);
  EXPECT_EQ(reader.next()->data, "a");
  TFRecordReader moved_reader(std::move(reader));
  EXPECT_EQ(moved_reader.next(), (Record{"b", 17}));
  EXPECT_EQ(moved_reader.next(), std::nullopt);
}

TEST_F(TFRecordTest, OpenAndUseErrors) {
  const std::string missing = path("missing.tfrecord");
  const auto e = thrown_by([&] { TFRecordReader r(missing); });
  EXPECT_EQ(kind_of(e), ErrorKind::kInvalidArgument);
  EXPECT_NE(message_of(e).find("'" + missing + "'"), std::string::npos) << message_of(e);

  const std::string bad_dir = path("no-such-dir/out.tfrecord");
  EXPECT_EQ(kind_of(thrown_by([&] { TFRecordWriter w(bad_dir); })),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind_of(thrown_by([&] { TFRecordReader r(write_file("x", ""), 15); })),
            ErrorKind::kInvalidArgument);

  TFRecordWriter writer(path("closed.tfrecord"));
  writer.close();
  EXPECT_EQ(kind_of(thrown_by([&] { writer.write("late"); })), ErrorKind::kFailedPrecondition);
}

// Corruption and truncation: records before the bad one all come back, then DataLoss naming
// the file and the bad record's offset, again on every later call.
struct Damage {
  const char* name;
  const char* kind;  // "corrupted" or "truncated"
  // Changes the file bytes; `at` is the bad record's offset, `length` its data length.
  void (*apply)(std::string& bytes, std::size_t at, std::size_t length);
};

void flip(std::string& bytes, std::size_t i, int bit = 0) {
  bytes[i] = static_cast<char>(bytes[i] ^ (1 << bit));
}

const Damage kDamages[] = {
    {"length_low_bit", "corrupted", [](std::string& b, std::size_t at, std::size_t) { flip(b, at); }},
    {"length_high_bit", "corrupted",
     [](std::string& b, std::size_t at, std::size_t) { flip(b, at + 7, 7); }},
    {"length_crc", "corrupted",
     [](std::string& b, std::size_t at, std::size_t) { flip(b, at + 9, 3); }},
    {"data_first_byte", "corrupted",
     [](std::string& b, std::size_t at, std::size_t) { flip(b, at + 12); }},
    {"data_last_byte", "corrupted",
     [](std::string& b, std::size_t at, std::size_t n) { flip(b, at + 12 + n - 1, 6); }},
    {"data_crc", "corrupted",
     [](std::string& b, std::size_t at, std::size_t n) { flip(b, at + 12 + n + 3, 1); }},
    {"truncated_in_length", "truncated",
     [](std::string& b, std::size_t at, std::size_t) { b.resize(at + 5); }},
    {"truncated_in_length_crc", "truncated",
     [](std::string& b, std::size_t at, std::size_t) { b.resize(at + 11); }},
    {"truncated_after_header", "truncated",
     [](std::string& b, std::size_t at, std::size_t) { b.resize(at + 12); }},
    {"truncated_in_data", "truncated",
     [](std::string& b, std::size_t at, std::size_t n) { b.resize(at + 12 + n / 2); }},
    {"truncated_in_data_crc", "truncated",
     [](std::string& b, std::size_t at, std::size_t n) { b.resize(at + 12 + n + 2); }},
    {"length_past_the_end", "truncated",  // a valid header whose length the file cannot hold
     [](std::string& b, std::size_t at, std::size_t) {
       const std::string huge = le64(std::uint64_t{1} << 40);
       b.replace(at, 12, huge + le32(reference_mask(reference_crc32c(huge))));
     }},
};

TEST_F(TFRecordTest, DamageIsDataLossAtTheBadRecordAfterAllGoodOnes) {
  // Records 0..3 are good; record 4 is damaged; record 5 follows it.
  const std::vector<std::size_t> sizes{10, 3000, 0, 70000, 5000, 20};
  std::string bytes;
  std::vector<Record> records;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    records.push_back({random_bytes(sizes[i], 50 + i), bytes.size()});
    bytes += tfrecord_frame(records.back().data);
  }
  const std::size_t bad = 4;
  const std::size_t at = records[bad].offset;
  const std::vector<Record> good(records.begin(), records.begin() + bad);

  for (const Damage& d : kDamages) {
    std::string damaged = bytes;
    d.apply(damaged, at, sizes[bad]);
    const std::string p = write_file(std::string(d.name) + ".tfrecord", damaged);
    const std::string expected =
        std::string(d.kind) + " record at " + std::to_string(at) + " in file '" + p + "'";
    for (std::size_t buffer : {kDefaultBuffer, std::size_t{16}, std::size_t{1000}}) {
      SCOPED_TRACE(std::string(d.name) + ", buffer " + std::to_string(buffer));
      TFRecordReader reader(p, buffer);
      std::vector<Record> got;
      const auto e = thrown_by([&] {
        while (auto r = reader.next()) got.push_back(std::move(*r));
      });
      EXPECT_EQ(got, good);
      ASSERT_TRUE(e) << "no error";
      EXPECT_EQ(kind_name(e), "DataLoss");
      EXPECT_EQ(message_of(e), expected);
      EXPECT_EQ(reader.offset(), at);
      // Sticky: the reader does not skip past the damage.
      const auto again = thrown_by([&] { (void)reader.next(); });
      EXPECT_EQ(message_of(again), expected);
      EXPECT_EQ(reader.offset(), at);
    }
  }

  // Cut exactly at a record boundary: a clean end, no error.
  const std::string cut = write_file("cut.tfrecord", bytes.substr(0, at));
  TFRecordReader reader(cut);
  EXPECT_EQ(read_all(reader), good);
}

// ---- dataset ------------------------------------------------------------------------------------

using DatasetTest = TempDirTest;

DatasetSpec small_spec(std::uint64_t seed = 7) {
  DatasetSpec spec;
  spec.files = 3;
  spec.records_per_file = 100;
  spec.seed = seed;
  spec.max_payload = 300;
  return spec;
}

TEST_F(DatasetTest, SameSeedSameBytesOtherSeedOtherBytes) {
  const Dataset a = generate_dataset(dir_ / "a", small_spec());
  const Dataset b = generate_dataset(dir_ / "b", small_spec());
  const Dataset c = generate_dataset(dir_ / "c", small_spec(8));
  ASSERT_EQ(a.files.size(), 3u);
  EXPECT_TRUE(a.generated);
  EXPECT_EQ(a.records, 300u);
  EXPECT_EQ(a.files[1].filename(), "data-00001-of-00003.tfrecord");
  std::uint64_t total = 0;
  for (std::size_t f = 0; f < a.files.size(); ++f) {
    const std::string bytes = read_file(a.files[f]);
    total += bytes.size();
    EXPECT_TRUE(bytes == read_file(b.files[f])) << f;
    EXPECT_FALSE(bytes == read_file(c.files[f])) << f;
  }
  EXPECT_EQ(a.bytes, total);
  EXPECT_EQ(b.bytes, total);
}

TEST_F(DatasetTest, EveryRecordParsesWithItsUniqueId) {
  const DatasetSpec spec = small_spec();
  const Dataset d = generate_dataset(dir_, spec);
  std::vector<bool> seen(d.records, false);
  std::size_t shortest = SIZE_MAX, longest = 0;
  for (std::size_t f = 0; f < d.files.size(); ++f) {
    TFRecordReader reader(d.files[f].string());
    std::uint32_t index = 0;
    while (auto r = reader.next()) {
      const ParsedRecord p = parse_record(r->data);
      ASSERT_TRUE(p.ok) << "file " << f << " record " << index;
      EXPECT_EQ(p.file, f);
      EXPECT_EQ(p.index, index);
      EXPECT_EQ(p.id, f * spec.records_per_file + index);
      ASSERT_LT(p.id, seen.size());
      EXPECT_FALSE(seen[p.id]);
      seen[p.id] = true;
      EXPECT_EQ(r->data, make_record(spec, static_cast<std::uint32_t>(f), index));
      shortest = std::min(shortest, p.payload_size);
      longest = std::max(longest, p.payload_size);
      ++index;
    }
    EXPECT_EQ(index, spec.records_per_file);
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](bool s) { return s; }));
  EXPECT_LE(longest, spec.max_payload);
  EXPECT_LT(shortest, longest);  // lengths vary
}

TEST_F(DatasetTest, ParseRecordDetectsEveryFlippedByteAndTruncation) {
  DatasetSpec spec = small_spec();
  spec.min_payload = 40;
  const std::string record = make_record(spec, 2, 17);
  ASSERT_TRUE(parse_record(record).ok);
  for (std::size_t i = 0; i < record.size(); ++i) {
    std::string bad = record;
    flip(bad, i, static_cast<int>(i % 8));
    EXPECT_FALSE(parse_record(bad).ok) << "byte " << i;
  }
  EXPECT_FALSE(parse_record(record.substr(0, record.size() - 1)).ok);
  EXPECT_FALSE(parse_record(record + "x").ok);
  EXPECT_FALSE(parse_record("").ok);
  EXPECT_FALSE(parse_record(record.substr(0, kDatasetRecordHeaderSize - 1)).ok);
}

TEST_F(DatasetTest, IdempotentAndRegeneratedWhenSpecOrFilesDiffer) {
  const Dataset first = generate_dataset(dir_, small_spec());
  EXPECT_TRUE(first.generated);
  const Dataset again = generate_dataset(dir_, small_spec());
  EXPECT_FALSE(again.generated);
  EXPECT_EQ(again.bytes, first.bytes);
  EXPECT_EQ(again.files, first.files);

  // A file cut short: regenerated.
  fs::resize_file(first.files[1], 10);
  const Dataset repaired = generate_dataset(dir_, small_spec());
  EXPECT_TRUE(repaired.generated);
  EXPECT_EQ(fs::file_size(first.files[1]), fs::file_size(dir_ / "data-00001-of-00003.tfrecord"));
  EXPECT_EQ(repaired.bytes, first.bytes);

  // Another spec: the old spec's files go, the new ones come.
  DatasetSpec two = small_spec();
  two.files = 2;
  const Dataset smaller = generate_dataset(dir_, two);
  EXPECT_TRUE(smaller.generated);
  EXPECT_FALSE(fs::exists(dir_ / "data-00000-of-00003.tfrecord"));
  EXPECT_TRUE(fs::exists(dir_ / "data-00001-of-00002.tfrecord"));
  EXPECT_FALSE(generate_dataset(dir_, two).generated);
  EXPECT_TRUE(generate_dataset(dir_, 2, 100, 99).generated);  // another seed
}

TEST_F(DatasetTest, BadSpecsAreInvalidArgument) {
  DatasetSpec spec = small_spec();
  spec.files = 0;
  EXPECT_EQ(kind_of(thrown_by([&] { generate_dataset(dir_, spec); })),
            ErrorKind::kInvalidArgument);
  spec = small_spec();
  spec.records_per_file = 0;
  EXPECT_NE(message_of(thrown_by([&] { generate_dataset(dir_, spec); })).find("records_per_file"),
            std::string::npos);
  spec = small_spec();
  spec.min_payload = 500;
  EXPECT_NE(message_of(thrown_by([&] { generate_dataset(dir_, spec); })).find("min_payload"),
            std::string::npos);
}

// The default dataset: its size and generation time, printed (not asserted). Release only.
TEST_F(DatasetTest, DefaultDatasetPrintsSizeAndTime) {
  if (testing::kScale == 1) GTEST_SKIP() << "sanitizer build: skipped";
  const auto t0 = std::chrono::steady_clock::now();
  const Dataset d = generate_dataset(dir_);
  const std::chrono::duration<double> generate = std::chrono::steady_clock::now() - t0;
  const auto t1 = std::chrono::steady_clock::now();
  std::uint64_t records = 0;
  for (const fs::path& f : d.files) {
    TFRecordReader reader(f.string());
    while (auto r = reader.next()) records += parse_record(r->data).ok ? 1 : 0;
  }
  const std::chrono::duration<double> read = std::chrono::steady_clock::now() - t1;
  EXPECT_EQ(records, d.records);
  std::printf("default dataset: %zu files, %llu records, %.1f MB; generated in %.2f s, read and "
              "parsed in %.2f s\n",
              d.files.size(), static_cast<unsigned long long>(d.records), d.bytes / 1e6,
              generate.count(), read.count());
}

}  // namespace
}  // namespace conveyor
