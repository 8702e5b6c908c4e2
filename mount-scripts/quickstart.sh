#!/usr/bin/env bash
# quickstart.sh: install what upfs needs, build it, mount the default store.
#
#   mount-scripts/quickstart.sh
#
# As root:      store /var/lib/upfs             mounted at /mnt/upfs (allow_other)
# As any user:  store ~/.local/share/upfs       mounted at ~/upfs (installing
#               packages then asks for sudo)
# UPFS_STORE and UPFS_MOUNT override the two paths. Running it again rebuilds
# and leaves an existing mount as it is. Unmount with
# mount-scripts/upfs-umount MOUNTPOINT.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

echo "== 1/3 packages"
mount-scripts/deps.sh

echo "== 2/3 build (Release) into build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target upfs   # the program only; tests build with the test command

echo "== 3/3 mount"
opts=()
if [[ $(id -u) -eq 0 ]]; then
  store=${UPFS_STORE:-/var/lib/upfs}
  mnt=${UPFS_MOUNT:-/mnt/upfs}
  # Root mounts for everyone; each session belongs to the user who made it
  # and modes are enforced as on a local filesystem.
  opts=(-o allow_other)
else
  store=${UPFS_STORE:-$HOME/.local/share/upfs}
  mnt=${UPFS_MOUNT:-$HOME/upfs}
fi
UPFS_BIN=$PWD/build/upfs mount-scripts/upfs-mount "${opts[@]}" "$store" "$mnt"

cat <<MSG

upfs is mounted at $mnt (store: $store). Upload a directory of files:

  mkdir $mnt/sessions/demo                       # begin a session
  cp ~/photos/* $mnt/sessions/demo/              # any tool, any order, in parallel
  (cd ~/photos && sha256sum *) > $mnt/sessions/demo/.finish   # verify + commit
  ls $mnt/assets/demo                            # committed, read-only

  cat $mnt/sessions/NAME/.status                 # what a session has received
  mount-scripts/upfs-umount $mnt                 # unmount (data is already safe)

More in README.md.
MSG
