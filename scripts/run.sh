#!/usr/bin/env bash
# The main job: set up and build, then a real generation.
#   scripts/run.sh [MODEL.gguf] [PROMPT] [extra ponder generate flags...]
# Default model: ../shared/models/stories260K.gguf.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
model=${1:-$root/../shared/models/stories260K.gguf}
prompt=${2:-Once upon a time}
shift $(( $# > 2 ? 2 : $# ))
exec "$root/build/ponder" generate --model "$model" --prompt "$prompt" -n 4 --max-tokens 96 "$@"
