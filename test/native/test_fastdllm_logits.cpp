// The KV-cache windows against Fast-dLLM's own cached forwards: on the LLaDA fixtures, a cache
// filled by a full forward over one canvas, then a prefix window (the block and all after it)
// or a dual window (the block only) over a later canvas, gives the logits Fast-dLLM computed
// at that step (debug_logits in expected_fastdllm.json, tools/fixtures/make_fastdllm_fixtures.py).
#include <cmath>
#include <cstring>

#include "cpu/cpu_backend.h"
#include "fixture.h"
#include "model/llada.h"
#include "safetensors.h"
#include "test.h"

using namespace difflm;
using namespace difflm_test;

TEST(kv_cache_windows_give_fast_dllm_logits) {
  for (const char* name : {"llada-tiny-a", "llada-tiny-b"}) {
    const std::string dir = std::string("test/fixtures/") + name;
    const ModelLoadSpec spec = fixture_spec(dir, "cpu", 2);
    CpuBackend be(2);
    WeightStore w(spec.files);
    LladaModel m(spec.llada, w, be);
    const JsonValue exp = parse_json(read_text(dir + "/expected_fastdllm.json"));
    const JsonValue* cases = exp.find("debug_logits");
    CHECK(cases && cases->array.size() == 2);
    for (const JsonValue& c : cases->array) {
      const std::vector<int32_t> built = ints(*c.find("cache_built_from_canvas_ids"));
      const std::vector<int32_t> canvas = ints(*c.find("canvas_ids"));
      const std::vector<int32_t> rows = ints(*c.find("canvas_rows"));
      const int64_t L = static_cast<int64_t>(canvas.size()), V = spec.llada.vocab;
      const int64_t w0 = rows[0], w1 = rows[1];
      const std::string raw = read_text(dir + "/" + c.find("file")->string);
      std::vector<float> want(raw.size() / sizeof(float));
      std::memcpy(want.data(), raw.data(), raw.size());
      CHECK(static_cast<int64_t>(want.size()) == (w1 - w0) * V);

      KvCache cache = m.make_cache(L);
      std::vector<float> last(V), got((w1 - w0) * V);
      const CheckCancel none = [] {};
      m.forward_window(built.data(), 0, L, L, cache, L - 1, L, last.data(), none);
      m.forward_window(canvas.data() + w0, w0, w1, L, cache, w0, w1, got.data(), none);
      const double err = rel_l2(got, want);
      CHECK_MSG(err <= 1e-5, name << " " << c.find("forward")->string << " rel L2 " << err);
    }
  }
}
