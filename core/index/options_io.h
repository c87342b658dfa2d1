// options_io.h: the build options an index saves (at the head of
// documents.bin, which the manifest checksums) and reads back field by field,
// so a loaded index analyses, chunks and rebuilds its dense side exactly as
// the index that was saved. BM25's parameters live with its postings
// (lexical.bin). Not installed.
#pragma once

#include <medsearch/index.h>
#include <medsearch/status.h>

#include "core/internal/binary_io.h"

namespace medsearch {

// Every option but bm25, in a fixed order.
void write_options(const BuildOptions& options, internal::BinaryWriter* out);

// Reads what write_options() wrote into `options` (bm25 untouched) and
// validates the result (validate()): an out-of-range value is a damaged file.
Status read_options(internal::BinaryReader* in, BuildOptions* options);

}  // namespace medsearch
