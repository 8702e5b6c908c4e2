// libFuzzer target: the store's record decoders (store/records.h), which
// read back bytes from disk that a damaged or foreign store may hold. The
// first input byte picks the decoder, the rest is the record. A decode
// either fails with Corruption or yields a record whose encoding is a fixed
// point: encode(decode(encode(r))) == encode(r).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "store/records.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using upfs::Status;

template <typename Record>
void RoundTrip(std::string_view in, Status (*decode)(std::string_view, Record*),
               std::string (*encode)(const Record&)) {
  Record r;
  Status st = decode(in, &r);
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == Status::Code::kCorruption);
    return;
  }
  const std::string once = encode(r);
  Record again;
  FUZZ_CHECK(decode(once, &again).ok());
  FUZZ_CHECK(encode(again) == once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  namespace s = upfs::store;
  switch (data[0] % 5) {
    case 0:
      RoundTrip<s::SessionRecord>(in, s::DecodeSession, s::EncodeSession);
      break;
    case 1:
      RoundTrip<s::NodeRecord>(in, s::DecodeNode, s::EncodeNode);
      break;
    case 2:
      RoundTrip<s::AssetRecord>(in, s::DecodeAsset, s::EncodeAsset);
      break;
    case 3:
      RoundTrip<s::AssetEntry>(in, s::DecodeEntry, s::EncodeEntry);
      break;
    case 4:
      RoundTrip<s::AssetLocation>(in, s::DecodeLocation, s::EncodeLocation);
      break;
  }
  return 0;
}
