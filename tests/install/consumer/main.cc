// Links the installed static library, builds a tiny index and searches it.
#include <cstdio>

#include "core/index/index.h"

int main() {
  medsearch::io::Document d;
  d.doc_id = "a";
  d.corpus = "demo";
  d.title = "Mesothelioma";
  d.body = "Nivolumab is an option for recurrent malignant mesothelioma.";
  std::vector<medsearch::io::Document> docs{d};
  auto index = medsearch::Index::build(std::move(docs), {});
  if (!index) return 1;
  auto response = (*index)->search("recurrent mesothelioma", {});
  if (!response || response->hits.size() != 1 || response->passage(0).doc_id != "a") return 2;
  std::printf("consumer ok: %s %.3f\n", response->passage(0).passage_id.c_str(), response->hits[0].score);
  return 0;
}
