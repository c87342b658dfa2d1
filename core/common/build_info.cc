#include <medsearch/build_info.h>

#include "core/embed/kernels/bf16_gemm.h"
#include "core/embed/kernels/dense.h"
#include "core/internal/cpu.h"
#include "core/vector/kernels/distance.h"

namespace medsearch {

BuildInfo build_info() {
  using internal::CpuLevel;
  BuildInfo info;
  info.version = MEDSEARCH_VERSION;
#if defined(__clang__)
  info.compiler = "Clang " __clang_version__;
#elif defined(__GNUC__)
  info.compiler = "GCC " __VERSION__;
#endif
  info.baseline = MEDSEARCH_BASELINE_ARCH;
  for (CpuLevel level : internal::kAllCpuLevels) {
    if (level == CpuLevel::kAmx && !MEDSEARCH_HAVE_AMX_KERNELS) continue;
    info.compiled.emplace_back(internal::cpu_level_name(level));
  }
  info.supported = internal::cpu_level_name(internal::supported_cpu_level());
  info.selected = internal::cpu_level_name(internal::cpu_level());
  info.requested = internal::cpu_level_request();
  info.cpu_features = internal::to_string(internal::cpu_features());
  info.distance_kernels = vector::kernels::isa_name(vector::kernels::best_kernels().level);
  info.encoder_float32 = internal::cpu_level_name(embed::kernels::dense_kernels().level);
  if (embed::kernels::amx_bf16_available()) {
    info.encoder_bfloat16 = "amx";
  } else {
    info.encoder_bfloat16_reason = embed::kernels::amx_bf16_unavailable_reason();
  }
  return info;
}

std::string to_string(const BuildInfo& info) {
  std::string compiled;
  for (const std::string& level : info.compiled) compiled += (compiled.empty() ? "" : " ") + level;
  std::string out;
  const auto line = [&](const char* key, const std::string& value) { out += std::string(key) + ": " + value + "\n"; };
  line("medsearch", info.version);
  line("compiler", info.compiler);
  line("baseline", info.baseline);
  line("kernels compiled", compiled);
  line("cpu supports", info.supported);
  std::string request;
  if (internal::CpuLevel level; !info.requested.empty()) {
    request = " (MEDSEARCH_CPU_LEVEL=" + info.requested +
              (internal::parse_cpu_level(info.requested, &level) ? ")" : ": no such level, ignored)");
  }
  line("cpu level", info.selected + request);
  line("distance kernels", info.distance_kernels);
  line("encoder float32", info.encoder_float32);
  line("encoder bfloat16", info.encoder_bfloat16.empty() ? "unavailable: " + info.encoder_bfloat16_reason
                                                         : info.encoder_bfloat16);
  line("cpu features", info.cpu_features);
  return out;
}

}  // namespace medsearch
