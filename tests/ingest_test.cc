// Tests of `conveyor ingest` (tools/ingest.h), the main job: exactly once per epoch on a
// generated dataset and on text files, and a corrupt TFRecord file that stops the pipeline with
// DataLoss after every batch queued before it was consumed.
#include "tools/ingest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/dataset.h"
#include "engine/record_reader.h"

namespace conveyor::tools {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("conveyor_ingest_test_" + name + "_" +
                                                    std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

IngestOptions small(const fs::path& dir) {
  IngestOptions o;
  o.readers = 3;
  o.batch_size = 16;
  o.capacity = 256;
  o.min_after_dequeue = 64;
  o.epochs = 2;
  o.progress = false;
  o.json = (dir / "summary.json").string();
  return o;
}

TEST(IngestTest, DatasetFilesArriveExactlyOncePerEpoch) {
  const fs::path dir = fresh_dir("dataset");
  const Dataset data = generate_dataset(dir / "data", 4, 300, 5);
  IngestOptions o = small(dir);
  for (const auto& f : data.files) o.files.push_back(f.string());
  ASSERT_EQ(run_ingest(o), 0);
  const nlohmann::json j = read_json(o.json);
  EXPECT_EQ(j["exactly_once"], true);
  EXPECT_EQ(j["records"], 4 * 300 * 2);
  EXPECT_EQ(j["error"], "");
  fs::remove_all(dir);
}

TEST(IngestTest, TextFilesArriveExactlyOncePerEpoch) {
  const fs::path dir = fresh_dir("text");
  for (int f = 0; f < 3; ++f) {
    std::ofstream out(dir / ("part" + std::to_string(f) + ".txt"));
    for (int line = 0; line < 500; ++line) out << "file " << f << " line " << line << "\n";
  }
  IngestOptions o = small(dir);
  for (int f = 0; f < 3; ++f) o.files.push_back((dir / ("part" + std::to_string(f) + ".txt")).string());
  ASSERT_EQ(run_ingest(o), 0);
  const nlohmann::json j = read_json(o.json);
  EXPECT_EQ(j["exactly_once"], true);
  EXPECT_EQ(j["records"], 3 * 500 * 2);
  fs::remove_all(dir);
}

TEST(IngestTest, ACorruptFileStopsThePipelineWithDataLossAndLosesNoQueuedBatch) {
  const fs::path dir = fresh_dir("corrupt");
  const Dataset data = generate_dataset(dir / "data", 2, 200, 9);
  // Flip one byte in the middle of the second file's data: its record fails a CRC.
  const fs::path bad = dir / "bad.tfrecord";
  fs::copy_file(data.files[1], bad);
  {
    std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(bad) / 2));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(fs::file_size(bad) / 2));
    c = static_cast<char>(c ^ 0x40);
    f.write(&c, 1);
  }
  IngestOptions o = small(dir);
  o.epochs = 1;
  o.files = {data.files[0].string(), bad.string()};
  EXPECT_EQ(run_ingest(o), 1);
  const nlohmann::json j = read_json(o.json);
  EXPECT_EQ(j["exactly_once"], false);
  const std::string error = j["error"];
  EXPECT_NE(error.find("DataLoss"), std::string::npos) << error;
  EXPECT_NE(error.find("bad.tfrecord"), std::string::npos) << error;
  // Every example queued before the stop reached the consumer, none twice.
  EXPECT_EQ(j["records"], j["queued"]);
  EXPECT_GT(j["records"].get<int>(), 0);
  EXPECT_LT(j["records"].get<int>(), 400);
  fs::remove_all(dir);
}

TEST(IngestTest, AMissingFileIsAnError) {
  IngestOptions o;
  o.files = {"/nonexistent/conveyor.tfrecord"};
  o.progress = false;
  EXPECT_THROW(run_ingest(o), Error);
}

}  // namespace
}  // namespace conveyor::tools
