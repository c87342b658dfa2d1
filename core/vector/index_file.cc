#include "core/vector/index_file.h"

#include <cstring>

namespace medsearch::vector::internal {

Result<VerifiedFile> open_verified(const std::filesystem::path& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return mapped.status();
  const MappedFile& f = **mapped;
  const std::string name = path.string();
  if (f.size() == 0) return Status::corrupt(name + ": empty file");
  if (f.size() < kHeaderBytes + kTrailerBytes) return Status::corrupt(name + ": file too short");
  if (std::memcmp(f.data(), kFileMagic, 8) != 0) return Status::corrupt(name + ": not a medsearch vector index");
  uint32_t version = 0, kind = 0;
  std::memcpy(&version, f.data() + 8, 4);
  std::memcpy(&kind, f.data() + 12, 4);
  if (version != kFormatVersion) {
    return Status::corrupt(name + ": format version " + std::to_string(version) + ", this build reads " +
                           std::to_string(kFormatVersion));
  }
  const char* trailer = f.data() + f.size() - kTrailerBytes;
  if (std::memcmp(trailer + 8, kEndMagic, 8) != 0) return Status::corrupt(name + ": truncated (no end marker)");
  uint64_t stored = 0;
  std::memcpy(&stored, trailer, 8);
  const uint64_t actual = medsearch::internal::xxh3_64(f.bytes().substr(0, f.size() - kTrailerBytes));
  if (stored != actual) return Status::corrupt(name + ": checksum mismatch");
  if (kind > static_cast<uint32_t>(IndexKind::kHnsw)) return Status::corrupt(name + ": unknown index kind");
  // The checksum pass touched every page; let them go until they are used.
  f.release_pages(0, f.size());
  return VerifiedFile{std::move(mapped).value(), static_cast<IndexKind>(kind)};
}

BinaryReader payload_reader(const MappedFile& f, std::string name) {
  return BinaryReader(f.bytes(), std::move(name), kHeaderBytes, f.size() - kTrailerBytes);
}

Result<BinaryWriter> create_index_file(const std::filesystem::path& path, IndexKind kind) {
  auto w = BinaryWriter::create_file(path);
  if (!w) return w.status();
  w->write(kFileMagic, 8);
  w->put(kFormatVersion);
  w->put(static_cast<uint32_t>(kind));
  return w;
}

Status finish_index_file(BinaryWriter& w) {
  w.put<uint64_t>(w.checksum());
  w.write(kEndMagic, 8);
  MEDSEARCH_RETURN_IF_ERROR(w.commit());
  std::filesystem::path dir = w.path().parent_path();
  if (dir.empty()) dir = ".";
  return medsearch::internal::sync_directory(dir);
}

}  // namespace medsearch::vector::internal
