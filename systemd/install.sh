#!/usr/bin/env bash
# Install edge-runtime as a systemd service on Raspberry Pi OS (bookworm) or a Jetson (JetPack):
# a venv under /opt/edge-runtime (PEP 668 keeps pip out of the system Python), the config in
# /etc/edge-runtime, state and caches in /var/lib/edge-runtime, logs in the journal.
# Idempotent: a second run changes nothing; a config or home file that exists is never touched.
#
#   sudo systemd/install.sh [--profile ID]       install (or update) and start the service
#   sudo systemd/install.sh --uninstall [--purge] remove it; --purge also the config and state
#
# Options:
#   --profile ID         device profile (device_profiles/ID.yaml); detected when not given.
#                        It sets MemoryMax (ram_budget_mb) and, for jetson-*, onnxruntime-gpu.
#   --prefix DIR         where the venv goes (default /opt/edge-runtime: DIR/venv)
#   --venv DIR           use this existing environment (edge-runtime installed in it) instead
#   --no-venv            install no venv (an image build that makes it later in a chroot)
#   --python PY          the Python (3.11+) that makes the venv (default /usr/bin/python3)
#   --source PATH        what pip installs: a checkout or a wheel (default this checkout)
#   --ort-gpu-index URL  Jetson: the index of onnxruntime-gpu wheels for the JetPack
#                        (default $ORT_GPU_INDEX or https://pypi.jetson-ai-lab.io/jp6/cu126)
#   --destdir DIR        install into DIR as if it were / (also $DESTDIR); no user is created
#                        and systemctl is not run, so this needs --venv or --no-venv
#   --no-user            do not create the edge-runtime user (it comes from elsewhere)
# docs/service.md describes the unit, the hardening and each step of this script.
set -euo pipefail
umask 022

repo=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/edge-runtime
root=${DESTDIR:-}
profile=""
venv=""
make_venv=1
python=/usr/bin/python3
source=$repo
ort_gpu_index=${ORT_GPU_INDEX:-https://pypi.jetson-ai-lab.io/jp6/cu126}
create_user=1
uninstall=0
purge=0
changed=0

say() { echo "install.sh: $*"; }
die() { echo "install.sh: error: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

while (($#)); do
  case $1 in
    --prefix | --destdir | --profile | --venv | --python | --source | --ort-gpu-index)
      (($# >= 2)) || die "$1 needs a value"
      case $1 in
        --prefix) prefix=$2 ;;
        --destdir) root=$2 ;;
        --profile) profile=$2 ;;
        --venv) venv=$2 make_venv=0 ;;
        --python) python=$2 ;;
        --source) source=$2 ;;
        --ort-gpu-index) ort_gpu_index=$2 ;;
      esac
      shift ;;
    --no-venv) make_venv=0 ;;
    --no-user) create_user=0 ;;
    --uninstall) uninstall=1 ;;
    --purge) purge=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

root=${root%/}
prefix=${prefix%/}
live=0; [ -z "$root" ] && live=1           # acting on this machine, not on a tree
systemd_up=0; ((live)) && [ -d /run/systemd/system ] && systemd_up=1
((live)) || create_user=0
venv=${venv:-$prefix/venv}
unit=$root/etc/systemd/system/edge-runtime.service
dropins=$root/etc/systemd/system/edge-runtime.service.d
sysusers=$root/etc/sysusers.d/edge-runtime.conf
config_dir=$root/etc/edge-runtime
state_dir=$root/var/lib/edge-runtime
((live)) && [ "$(id -u)" -ne 0 ] && die "run it as root (sudo), or into a tree with --destdir"

# put MODE FILE: stdin into FILE when it differs; an unchanged file (and its directory) keeps its
# time stamps, and a changed one is replaced by a rename, never seen half-written.
put() {
  local mode=$1 file=$2 new temporary
  new=$(mktemp)
  cat >"$new"
  mkdir -p "$(dirname "$file")"
  if [ -f "$file" ] && cmp -s "$new" "$file"; then
    rm -f "$new"
    chmod "$mode" "$file"
    return
  fi
  temporary=$(mktemp "$file.XXXXXX")
  cat "$new" >"$temporary"
  rm -f "$new"
  chmod "$mode" "$temporary"
  mv -f "$temporary" "$file"
  changed=1
  say "wrote ${file#"$root"}"
}

# put_once MODE FILE: like put, but a file that exists is the user's and stays as it is.
put_once() {
  if [ -e "$2" ]; then
    cat >/dev/null
    say "kept ${2#"$root"} (yours)"
  else
    put "$@"
  fi
}

uninstall() {
  if ((systemd_up)); then
    systemctl disable --now --quiet edge-runtime.service 2>/dev/null || true
  fi
  rm -f "$unit" "$sysusers"
  rm -rf "$dropins"
  if [ "$venv" = "$prefix/venv" ]; then
    rm -rf "$root$venv"
    rmdir "$root$prefix" 2>/dev/null || true
  fi
  if ((purge)); then
    rm -rf "$config_dir" "$state_dir"
  else
    say "kept ${config_dir#"$root"} and ${state_dir#"$root"} (--purge removes them)"
  fi
  ((systemd_up)) && systemctl daemon-reload
  say "removed the service (the edge-runtime user stays, as systemd's users do)"
}

# Debian packages the venv needs at run time: venv itself, PortAudio for the microphone.
debian_packages() {
  local missing=()
  "$python" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
  ldconfig -p | grep -q 'libportaudio\.so\.2 ' || missing+=(libportaudio2)
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# The venv: the project and its dependencies; on a Jetson onnxruntime-gpu instead of
# onnxruntime (both provide the module `onnxruntime`, so never both).
make_venv() {
  [ -n "$root" ] && die "a venv stops working when moved: with --destdir use --venv or --no-venv"
  debian_packages
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "edge-runtime needs Python 3.11 or newer; name one with --python"
  case $(readlink -f "$(command -v "$python")") in
    /root/* | /home/*) die "$python lives in a home directory, which the service cannot see (ProtectHome=): use a system Python with --python" ;;
  esac
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
  local pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
  if [[ $profile == jetson* ]]; then
    "${pip[@]}" --no-deps "$source"
    "$venv/bin/python" -c '
from importlib.metadata import requires
for r in requires("edge-runtime") or []:
    if "extra ==" not in r and not r.startswith("onnxruntime"):
        print(r)' | "${pip[@]}" -r /dev/stdin
    "$venv/bin/python" -m pip uninstall -y -q onnxruntime 2>/dev/null || true
    "${pip[@]}" --extra-index-url "$ort_gpu_index" onnxruntime-gpu \
      || die "no onnxruntime-gpu for this JetPack and Python at $ort_gpu_index; install one into $venv and run again with --venv $venv"
  else
    "${pip[@]}" "$source"
  fi
  changed=1
  say "installed edge-runtime into $venv"
}

detect_profile() {
  [ -x "$venv/bin/edge-runtime" ] || die "no $venv/bin/edge-runtime to detect the profile: give --profile"
  "$venv/bin/edge-runtime" profiles --json \
    | "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["selected"])'
}

ram_budget_mb() {
  local file=$repo/device_profiles/$profile.yaml known="" each
  if [ ! -f "$file" ]; then
    for each in "$repo"/device_profiles/*.yaml; do
      each=${each##*/}
      known+=" ${each%.yaml}"
    done
    die "unknown profile '$profile' (known:$known)"
  fi
  sed -n 's/^ram_budget_mb: *\([0-9][0-9]*\).*/\1/p' "$file"
}

service_user() {
  put 0644 "$sysusers" <<'EOF'
# The edge-runtime service's own user (systemd/install.sh); the unit adds the group audio.
u edge-runtime - "edge-runtime voice assistant node" /var/lib/edge-runtime
EOF
  ((create_user)) || return 0
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "$sysusers"
  elif ! getent passwd edge-runtime >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/edge-runtime --no-create-home \
      --shell /usr/sbin/nologin edge-runtime
  fi
}

unit_files() {
  local budget exe=$venv/bin/edge-runtime
  budget=$(ram_budget_mb)
  sed -e "s|^ExecStart=/opt/edge-runtime/venv/bin/edge-runtime |ExecStart=$exe |" \
    -e "s|^MemoryMax=.*|MemoryMax=${budget}M|" \
    -e "s|^# Memory: .*|# Memory: ram_budget_mb of device profile $profile (written by install.sh).|" \
    "$repo/systemd/edge-runtime.service" | put 0644 "$unit"
  if [[ $profile == jetson* ]]; then
    put 0644 "$dropins/jetson.conf" <"$repo/systemd/jetson.conf"
  elif [ -e "$dropins/jetson.conf" ]; then
    rm -f "$dropins/jetson.conf"
    rmdir "$dropins" 2>/dev/null || true
    changed=1
  fi
}

config_files() {
  install -d -m 0750 "$config_dir" "$state_dir"
  put_once 0640 "$config_dir/config.yaml" <<EOF
# The node config that the service reads (README.md, "The node config"). After a change:
#   sudo systemctl restart edge-runtime
# and to check it, the home, the models, the microphone and the broker:
#   sudo -u edge-runtime $venv/bin/edge-runtime doctor --config /etc/edge-runtime/config.yaml
home: home.yaml              # your floors, areas and devices (the demo home to start with)
profile: $profile
broker:
  host: localhost
  port: 1883
  # username: edge
  # password_file: mqtt-password   # a file in /etc/edge-runtime, root:edge-runtime, mode 0640
service:
  ready_without_broker_s: 60  # tell systemd "ready" this long after start even with no broker
EOF
  put_once 0640 "$config_dir/home.yaml" <"$repo/edge_runtime/data/home.yaml"
  if ((create_user)); then
    chgrp edge-runtime "$config_dir" "$config_dir/config.yaml" "$config_dir/home.yaml"
    chown edge-runtime:edge-runtime "$state_dir"
  fi
}

start_service() {
  local was
  was=$(systemctl is-active edge-runtime.service 2>/dev/null || true)
  systemctl daemon-reload
  systemctl enable --quiet edge-runtime.service
  if [ "$was" = active ] && ((changed)); then
    systemctl restart --no-block edge-runtime.service
  else
    systemctl start --no-block edge-runtime.service
  fi
  say "started; see it with: systemctl status edge-runtime; journalctl -u edge-runtime -f"
}

if ((uninstall)); then
  uninstall
  exit 0
fi
((make_venv)) && make_venv
[ -n "$profile" ] || profile=$(detect_profile)
say "profile $profile, MemoryMax $(ram_budget_mb)M, ExecStart $venv/bin/edge-runtime"
service_user
unit_files
config_files
if ((systemd_up)); then
  start_service
elif ((live)); then
  say "systemd is not running here: start the service on the next boot"
fi
