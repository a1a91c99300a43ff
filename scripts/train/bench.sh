#!/usr/bin/env bash
# Times train.py's two malloc settings side by side (make bench-train):
#   scripts/train/bench.sh DATA WORK TRAIN-FLAGS...
# runs train.py with TRAIN-FLAGS, cut to one short epoch (--epochs 1
# --samples-per-epoch ${BENCH_SAMPLES:-512}), ${BENCH_ROUNDS:-2} times with
# --malloc default and --malloc keep in turn, so that both see the same
# machine; prints each run's training and after-training seconds and their
# ratios, and checks that both settings wrote the same model files byte for
# byte (the setting changes where memory comes from, never a value).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DATA WORK TRAIN-FLAGS..." >&2; exit 2; }
[ -d "$1" ] || { echo "bench: DATA=$1 is not a folder (want ../shared/datasets/magnetic-tile)" >&2; exit 2; }
data=$(realpath "$1") work=$(realpath -m "$2")
shift 2
py=${PY:-/usr/bin/python3}
rounds=${BENCH_ROUNDS:-2}
samples=${BENCH_SAMPLES:-512}
cd "$(dirname "$0")/../.."
rm -rf "$work"
mkdir -p "$work"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
declare -A train post
for r in $(seq "$rounds"); do
	for m in default keep; do
		out=$work/$m-$r
		"$py" scripts/train/train.py --data "$data" --out "$out" --name bench --no-links --quiet "$@" \
			--epochs 1 --samples-per-epoch "$samples" --malloc "$m" >"$out.log" 2>&1 ||
			{ cat "$out.log" >&2; exit 1; }
		line=$(grep -o 'done in [0-9]*s (training [0-9]*s)' "$out.log")
		total=$(echo "$line" | sed 's/done in \([0-9]*\)s.*/\1/')
		tr=$(echo "$line" | sed 's/.*training \([0-9]*\)s)/\1/')
		train[$m]=$(( ${train[$m]:-0} + tr ))
		post[$m]=$(( ${post[$m]:-0} + total - tr ))
		printf 'round %d  --malloc %-7s  reading + training %4d s  after training %4d s\n' "$r" "$m" "$tr" $(( total - tr ))
		for f in model.onnx int8/model.onnx; do
			[ "$m" = default ] || cmp -s "$work/default-$r/$f" "$out/$f" ||
				{ echo "bench: $f differs between --malloc default and keep" >&2; exit 1; }
		done
	done
done
awk -v td="${train[default]}" -v tk="${train[keep]}" -v pd="${post[default]}" -v pk="${post[keep]}" 'BEGIN {
	printf "keep / default: training %.2fx, after training %.2fx; model files identical\n", tk / td, pk / pd }'
