#!/usr/bin/env bash
# Installs the Debian 12 packages upfs needs to build, test and mount.
#
# The one list of upfs's system dependencies: .ci/run, quickstart.sh and the
# README's test command all call this script. When every package is already
# installed it does nothing (no apt-get update, no network); otherwise it
# installs only the missing ones, as root or through sudo.
set -euo pipefail

packages=(
  # build
  g++ cmake make pkg-config
  libleveldb-dev libsnappy-dev libssl-dev libspdlog-dev libfmt-dev catch2 libfuse3-dev
  libxxhash-dev
  # the upfs program's malloc, tcmalloc (CMakeLists.txt, UPFS_MALLOC)
  libgoogle-perftools-dev
  # (libsnappy-dev: Debian's LevelDB CMake package links -lsnappy)
  # mount: fusermount3, mount.fuse3
  fuse3
  # integration tests: real clients and the tools the scripts use
  rsync libglib2.0-bin attr util-linux procps coreutils tar openssl
  # bad_input.sh reads each errno from the syscall with Python's os module
  python3
  # install.sh: mount(8) with -t fuse.upfs and -T FSTAB; the man page
  # upfs(8) rendered and checked for warnings
  mount man-db groff-base
  # tests/fuzz: libFuzzer comes with clang's runtime (libclang-rt-dev)
  clang libclang-rt-dev
  # tests/style: the code format check (.clang-format)
  clang-format
  # third-party exercisers (tests/integration/exerciser_*.sh)
  fio stress-ng dbench
  # integration.metrics checks the metrics file with promtool (Debian
  # ships it only in prometheus, whose server is not started or needed)
  prometheus
  # tests/bench/bench.sh draws its plot with gnuplot
  gnuplot-nox
  # the RADOS backend: librados (C and C++ headers, no pkg-config file) and,
  # for tests/ceph/cluster.sh, a throw-away cluster's daemons and the
  # ceph/rados/ceph-authtool/monmaptool tools (Ceph 16.2.15 on Debian 12)
  librados-dev libradospp-dev
  ceph-mon ceph-mgr ceph-osd ceph-common
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "deps.sh: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "deps.sh: installing ${missing[*]}"
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "deps.sh: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  sudo=(sudo)
fi
"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
