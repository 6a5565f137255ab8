#!/usr/bin/env bash
# The benchmark suites on a lent accelerator, each under its own time limit, in one call.
#
#   INFER_COMMIT=<commit> bash benchmarks/on_accelerator.sh OUT_DIR "sweep:260 ais_chains:40"
#
# Run from the root of a clean copy of the commit named: the JSONs record that commit (a git
# history the copy has of its own is hidden from the suites). Before anything runs, every
# entry is checked (benchmarks/<name>.py exists, the seconds are a whole number above 0);
# then the wheels in .whl/ (the packages the machine lacks: ArviZ, BlackJAX, Zarr) are
# installed into /tmp/site, and `benchmarks/run.py --check` makes sure the modules the suites
# import are there. JAX's default backend must not be the CPU (its *_cpu.json files would
# replace the CPU tables) unless INFER_ALLOW_CPU=1. After every suite the JSONs and pictures
# (docs/images/) this call wrote are copied to OUT_DIR (pictures under OUT_DIR/docs/images),
# so a suite stopped by its limit loses only itself (the sweep writes its JSON after each
# row and loses only the row it was on). The exit status is 1 when any suite failed or ran
# out of time (a summary of each suite's status comes last), 2 when nothing could be run.
# A suite's extra arguments follow its limit after commas: "samplers:150,--repeats,2".
# PYTHON names the interpreter (default python3).
set -u
out=${1:?"give the folder the JSONs are copied to"}
suites=${2:?"give the suites as 'name:seconds[,arg...]' separated by spaces"}
python=${PYTHON:-python3}
if [ -z "${INFER_COMMIT:-}" ]; then
    echo "set INFER_COMMIT to the commit this tree is a copy of" >&2
    exit 2
fi
bad=()
names=()
for entry in $suites; do
    name=${entry%%:*}
    rest=${entry#*:}
    limit=${rest%%,*}
    if [ "$entry" = "$name" ]; then
        bad+=("$entry: no ':seconds' after the name")
        continue
    fi
    [ -f "benchmarks/$name.py" ] || bad+=("$entry: there is no benchmarks/$name.py")
    case $limit in
        '' | *[!0-9]*) bad+=("$entry: the seconds, '$limit', are not a whole number") ;;
        *) [ $((10#$limit)) -gt 0 ] || bad+=("$entry: the seconds, '$limit', are not above 0") ;;
    esac
    names+=("$name")
done
if [ ${#bad[@]} -gt 0 ]; then
    echo "nothing run: fix these entries (each 'name:seconds[,arg...]', the name a file in benchmarks/):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 2
fi
head=$(git rev-parse HEAD 2>/dev/null) || head=""
if [ -n "$head" ] && [ "${head#"$INFER_COMMIT"}" = "$head" ]; then
    # the figures would be recorded against a commit the code may not be: refuse
    echo "nothing run: this copy's git HEAD ($head) is not INFER_COMMIT ($INFER_COMMIT)." \
        "Pass INFER_COMMIT=\$(git rev-parse HEAD) of the tree you sent." >&2
    exit 2
fi
if ls .whl/*.whl >/dev/null 2>&1; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 2
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
"$python" benchmarks/run.py --check --only "$(IFS=,; echo "${names[*]}")" || exit 2
backend=$("$python" -c "import jax, sys
print('devices:', jax.devices(), file=sys.stderr)
print(jax.default_backend())") || exit 2
if [ "$backend" = cpu ] && [ "${INFER_ALLOW_CPU:-}" != 1 ]; then
    echo "JAX's default backend is the CPU: its *_cpu.json files would replace the CPU" \
        "tables. Run on an accelerator, or set INFER_ALLOW_CPU=1 to run anyway." >&2
    exit 2
fi
mkdir -p "$out"
marker=$(mktemp)  # the files newer than this were written by this call
summary=()
failed=0
for entry in $suites; do
    name=${entry%%:*}
    rest=${entry#*:}
    limit=${rest%%,*}
    args=()
    if [ "$rest" != "$limit" ]; then
        IFS=, read -r -a args <<<"${rest#*,}"
    fi
    echo "== $name (limit ${limit} s) ${args[*]:-}"
    start=$(date +%s)
    timeout --signal=TERM --kill-after=5 "$limit" "$python" "benchmarks/$name.py" ${args[@]+"${args[@]}"}
    status=$?
    case $status in
        0) how="ok" ;;
        124 | 137) how="out of time (exit $status)" ;;
        *) how="failed (exit $status)" ;;
    esac
    [ "$status" -eq 0 ] || failed=1
    summary+=("$entry: $how after $(($(date +%s) - start)) s")
    echo "== $name: ${summary[-1]#*: }"
    find benchmarks/results -name '*.json' -newer "$marker" -exec cp {} "$out"/ \;
    if [ -d docs/images ]; then
        find docs/images -type f -newer "$marker" -exec cp --parents {} "$out"/ \;
    fi
done
ls -laR "$out"
echo "== summary"
printf '  %s\n' "${summary[@]}"
exit "$failed"
