// The RADOS backend's parts that need no cluster: where keys go, the
// intent encoding, and the errno -> Status table.
#include <cerrno>

#include <catch2/catch.hpp>

#include "store/rados_blob_files.h"
#include "store/rados_connection.h"
#include "store/rados_kv.h"
#include "store/records.h"

namespace upfs::store {
namespace {

TEST_CASE("rados: extent keys map to their blob's object, every other key to upfs.meta",
          "[store][rados-unit]") {
  CHECK(RadosKv::ObjectOf(keys::Extent(0x1234, 99)) == "upfs.x.0000000000001234");
  CHECK(RadosKv::ObjectOf(keys::BlobEnd(0x1234)) == "upfs.x.0000000000001234");
  CHECK(RadosKv::ObjectOf(keys::Session("s")) == "upfs.meta");
  CHECK(RadosKv::ObjectOf(keys::Id(5)) == "upfs.meta");
  CHECK(RadosKv::ObjectOf("V") == "upfs.meta");
  CHECK(RadosBlobFiles::StripeObject(0xabc, 0x12) == "upfs.b.0000000000000abc.00000012");
}

TEST_CASE("rados: an intent decodes to the write it encodes, and a damaged one does not",
          "[store][rados-unit]") {
  KvWrite w;
  w.Put(std::string("k\0ey", 4), std::string("v\0\xff", 3));
  w.Delete("gone");
  w.Put("empty", "");
  const std::string enc = EncodeKvWrite(w);
  KvWrite back;
  REQUIRE(DecodeKvWrite(enc, &back));
  CHECK(back.ops == w.ops);
  for (size_t cut = 0; cut < enc.size(); ++cut) {
    INFO("cut at " << cut);
    CHECK(!DecodeKvWrite(enc.substr(0, cut), &back));
  }
  CHECK(!DecodeKvWrite(enc + "x", &back));
}

TEST_CASE("rados: librados errors map to store codes", "[store][rados-unit]") {
  CHECK(FromRados(0, "x").ok());
  CHECK(FromRados(5, "x").ok());
  CHECK(FromRados(-ENOENT, "x").IsNotFound());
  CHECK(FromRados(-ENOSPC, "x").code() == Status::Code::kNoSpace);
  CHECK(FromRados(-EDQUOT, "x").code() == Status::Code::kNoSpace);
  const Status timeout = FromRados(-ETIMEDOUT, "reading upfs.meta");
  CHECK(timeout.code() == Status::Code::kIOError);
  CHECK(timeout.message().find("reading upfs.meta") != std::string::npos);
  CHECK(FromRados(-EFBIG, "x").code() == Status::Code::kTooLarge);
  CHECK(FromRados(-EIO, "x").code() == Status::Code::kIOError);
}

}  // namespace
}  // namespace upfs::store
