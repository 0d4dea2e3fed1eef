#!/usr/bin/env bash
# End-to-end test of the example programs (docs/examples.md): quickstart, train_text with
# the bytes and (when built with it) the SentencePiece tokenizer, generate with every
# strategy, resuming, Ctrl-C, and the error paths (truncated checkpoint, missing tokenizer,
# bad flags, short corpus). Every command runs under `timeout`, so a hang fails the test
# instead of stalling ctest. Takes about 10-20 s in a Release build.
#
#   run_examples.sh QUICKSTART TRAIN_TEXT GENERATE [CORPUS]
#
# CORPUS defaults to /usr/share/common-licenses/GPL-3, or the repository's Markdown files
# when that does not exist. Exit status 0 if every check passed.
set -u

if [[ $# -lt 3 ]]; then
  echo "usage: $0 QUICKSTART TRAIN_TEXT GENERATE [CORPUS]" >&2
  exit 2
fi
QS=$1 TT=$2 GEN=$3
src_dir=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/rosetta-examples.XXXXXX")
trap 'rm -rf "$work"' EXIT

corpus=${4:-/usr/share/common-licenses/GPL-3}
if [[ ! -r $corpus ]]; then
  corpus=$work/corpus.txt
  cat "$src_dir"/README.md "$src_dir"/docs/*.md >"$corpus"
fi

passed=0 failed=0
pass() { echo "PASS  $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL  $1"
  [[ -n ${2:-} && -f $2 ]] && sed 's/^/      | /' "$2" | tail -n 15
  failed=$((failed + 1))
}

# run NAME CMD...: runs CMD (60 s limit) with stdout+stderr in $work/NAME.log; sets $rc.
run() {
  local name=$1
  shift
  timeout 60 "$@" >"$work/$name.log" 2>&1
  rc=$?
}
# expect NAME WANT_RC PATTERN CMD...: exit status WANT_RC ("err": 1 or 2, never a signal)
# and PATTERN (grep -E, may be empty) in the output.
expect() {
  local name=$1 want=$2 pattern=$3
  shift 3
  run "$name" "$@"
  local ok=1
  if [[ $want == err ]]; then
    [[ $rc -eq 1 || $rc -eq 2 ]] || ok=0
  else
    [[ $rc -eq $want ]] || ok=0
  fi
  if [[ -n $pattern ]] && ! grep -Eq -- "$pattern" "$work/$name.log"; then ok=0; fi
  if [[ $ok -eq 1 ]]; then
    pass "$name (exit $rc)"
  else
    fail "$name: exit $rc (wanted $want), pattern '$pattern'" "$work/$name.log"
  fi
}

has_spm=0
if "$TT" --help 2>&1 | grep -q "spm or bytes"; then has_spm=1; fi
echo "corpus: $corpus; SentencePiece: $([[ $has_spm -eq 1 ]] && echo yes || echo no)"

# --- quickstart -------------------------------------------------------------------------
expect quickstart 0 'logits \[16 x 1000\]' "$QS"
if grep -q 'trained   greedy \[0, 1, 2, 3, 4, 5, 6, 7\]' "$work/quickstart.log"; then
  pass "quickstart: trained model continues the count"
else
  fail "quickstart: greedy output after training is not [0..7]" "$work/quickstart.log"
fi
expect quickstart_help 0 '--tokens' "$QS" --help

# --- train_text: bytes and spm ----------------------------------------------------------
small=(--corpus "$corpus" --steps 30 --seq 32 --batch 4 --eval-every 10 --save-every 20
  --eval-windows 8 --log-every 10)
tokenizers=(bytes)
[[ $has_spm -eq 1 ]] && tokenizers+=(spm)
for tok in "${tokenizers[@]}"; do
  ckpt=$work/$tok.safetensors
  expect "train_$tok" 0 'saved .* \(step 30\)' "$TT" "${small[@]}" --tokenizer "$tok" --out "$ckpt"
  if [[ -s $ckpt ]]; then pass "train_$tok: checkpoint written"; else fail "train_$tok: no $ckpt"; fi
  grep -q '^eval  step     30  held-out ce' "$work/train_$tok.log" &&
    pass "train_$tok: held-out evaluation" || fail "train_$tok: no held-out eval line" "$work/train_$tok.log"
  grep -q '^route step     30  expert share' "$work/train_$tok.log" &&
    pass "train_$tok: expert shares" || fail "train_$tok: no expert share line" "$work/train_$tok.log"
  for strategy in greedy sample topk topp; do
    expect "generate_${tok}_$strategy" 0 "new tokens \\($tok tokenizer\\), strategy $strategy" \
      "$GEN" --checkpoint "$ckpt" --prompt "This License" --max-len 48 --strategy "$strategy"
  done
  # same seed, same text
  run "generate_${tok}_again" "$GEN" -q --checkpoint "$ckpt" --max-len 48 --strategy topp --seed 7
  cp "$work/generate_${tok}_again.log" "$work/first.txt"
  run "generate_${tok}_again" "$GEN" -q --checkpoint "$ckpt" --max-len 48 --strategy topp --seed 7
  cmp -s "$work/first.txt" "$work/generate_${tok}_again.log" &&
    pass "generate_$tok: same seed, same text" || fail "generate_$tok: seed not reproducible"
done
if [[ $has_spm -eq 1 ]]; then
  [[ -s $work/spm.spm.model ]] && pass "train_spm: tokenizer saved beside the checkpoint" ||
    fail "train_spm: no $work/spm.spm.model"
fi

# --- resume: the step count continues ---------------------------------------------------
expect resume 0 'resuming .* at step 30' "$TT" --resume "$work/bytes.safetensors" --steps 40 \
  --eval-every 10 --log-every 10
grep -q 'saved .*bytes.safetensors (step 40)' "$work/resume.log" &&
  pass "resume: continued to step 40 in place" || fail "resume: no step-40 save" "$work/resume.log"
expect resume_done err 'already at step 40' "$TT" --resume "$work/bytes.safetensors" --steps 40

# --- Ctrl-C: finish the step, save, exit 130 --------------------------------------------
"$TT" --corpus "$corpus" --tokenizer bytes --steps 1000000 --seq 32 --batch 4 --log-every 1 \
  --eval-every 1000000 --out "$work/int.safetensors" >"$work/sigint.log" 2>&1 &
pid=$!
for _ in $(seq 200); do # up to 20 s for the first step
  grep -q '^step' "$work/sigint.log" 2>/dev/null && break
  sleep 0.1
done
kill -INT "$pid" 2>/dev/null
rc=0
for _ in $(seq 300); do # it must stop within 30 s
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  kill -KILL "$pid"
  fail "sigint: still running 30 s after SIGINT" "$work/sigint.log"
fi
wait "$pid"
rc=$?
if [[ $rc -eq 130 ]] && grep -q 'interrupted by SIGINT' "$work/sigint.log" &&
  [[ -s $work/int.safetensors ]]; then
  pass "sigint: saved and exited 130"
else
  fail "sigint: exit $rc (wanted 130 with a saved checkpoint)" "$work/sigint.log"
fi
expect sigint_generate 0 'new tokens' "$GEN" --checkpoint "$work/int.safetensors" --max-len 20

# --- errors: clear message, exit 1 or 2, never a signal or a hang ------------------------
head -c 100000 "$work/bytes.safetensors" >"$work/truncated.safetensors"
expect truncated_generate err 'generate: error: .*truncated.safetensors' \
  "$GEN" --checkpoint "$work/truncated.safetensors"
expect truncated_resume err 'train_text: error: .*truncated.safetensors' \
  "$TT" --resume "$work/truncated.safetensors" --steps 50
head -c 5 "$work/bytes.safetensors" >"$work/stub.safetensors"
expect stub_generate err 'generate: error:' "$GEN" --checkpoint "$work/stub.safetensors"
expect missing_checkpoint err 'generate: error:' "$GEN" --checkpoint "$work/nonexistent.safetensors"
if [[ $has_spm -eq 1 ]]; then
  mkdir -p "$work/moved"
  cp "$work/spm.safetensors" "$work/moved/"
  expect missing_tokenizer err 'spm.model.*does not exist' \
    "$GEN" --checkpoint "$work/moved/spm.safetensors"
fi
ok=$work/bytes.safetensors
expect empty_prompt err 'encodes to no tokens' "$GEN" --checkpoint "$ok" --prompt ""
expect max_len_big err 'exceeds the model' "$GEN" --checkpoint "$ok" --max-len 100000
expect max_len_zero err 'no room' "$GEN" --checkpoint "$ok" --max-len 0
expect bad_p err 'p=1.5' "$GEN" --checkpoint "$ok" --strategy topp --p 1.5
expect bad_k err 'k=-3' "$GEN" --checkpoint "$ok" --strategy topk --k -3
expect bad_temperature err 'temperature=-1' "$GEN" --checkpoint "$ok" --temperature -1
expect bad_strategy err 'strategy' "$GEN" --checkpoint "$ok" --strategy beam
expect bad_flag_generate err '' "$GEN" --checkpoint "$ok" --no-such-flag
expect bad_flag_train err 'no-such-flag' "$TT" --no-such-flag
expect bad_corpus err 'cannot open corpus' "$TT" --corpus "$work/nonexistent.txt" --steps 1
printf 'too short\n' >"$work/short.txt"
expect short_corpus err 'too short' "$TT" --corpus "$work/short.txt" --tokenizer bytes --steps 1 \
  --out "$work/short.safetensors"
expect bad_out err 'cannot write --out' "$TT" --tokenizer bytes --steps 1 \
  --out "$work/no/such/dir/x.safetensors"

echo "examples: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
