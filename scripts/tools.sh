# Shell functions shared by ./run and ./test: each installs one thing the commands need, only
# when it is missing, and says what it installed. Sourced, not run.

# apt-get as root, or through sudo when there is one; refreshes the package lists only when an
# install fails on stale ones.
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "error: need root (or sudo) to install: apt-get install $*" >&2
      exit 1
    }
    sudo="sudo"
  fi
  echo "installing (apt): $*"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends "$@" >/dev/null \
    || { $sudo apt-get update -qq && $sudo apt-get install -y --no-install-recommends "$@" >/dev/null; }
}

need_cargo() {
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
  command -v cargo >/dev/null || {
    echo "error: no cargo: install the Rust toolchain (https://rustup.rs)" >&2
    exit 1
  }
}

# Node.js 20 or later, for the web app's build.
need_node() {
  command -v npm >/dev/null || apt_install nodejs npm
  local major
  major="$(node --version | sed 's/^v\([0-9]*\).*/\1/')"
  if [ "$major" -lt 20 ]; then
    echo "error: Node.js $(node --version) is too old: the web app needs 20 or later" >&2
    exit 1
  fi
}

# `npm ci` in DIR when its node_modules is missing or older than its lock file.
npm_ci() {
  local dir="$1"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
    || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "installing (npm ci): $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The web app, built into web/dist (what `chime serve` serves) when a source is newer.
build_web() {
  need_node
  npm_ci web
  if [ ! -f web/dist/index.html ] \
    || [ -n "$(find web/src web/index.html web/public web/package-lock.json web/vite.config.ts \
      -newer web/dist/index.html -print -quit 2>/dev/null)" ]; then
    echo "building the web app (web/dist)"
    (cd web && npm run build --silent)
  fi
}
