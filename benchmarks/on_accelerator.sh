#!/usr/bin/env bash
# The benchmark suites on a lent accelerator, each under its own time limit, in one call.
#
#   INFER_COMMIT=<commit> bash benchmarks/on_accelerator.sh OUT_DIR "sweep:260 ais_chains:40"
#
# Run from the root of a clean copy of the commit named (the machine has no .git): the JSONs
# record that commit. Wheels in .whl/ (the packages the machine lacks: ArviZ, BlackJAX, Zarr)
# are installed into /tmp/site first. After every suite the JSONs this call wrote are copied
# to OUT_DIR, so a suite stopped by its limit loses only itself (the sweep writes its JSON
# after each row and loses only the row it was on).
# A suite's extra arguments follow its limit after commas: "samplers:150,--repeats,2".
set -u
out=${1:?"give the folder the JSONs are copied to"}
suites=${2:?"give the suites as 'name:seconds[,arg...]' separated by spaces"}
if [ -z "${INFER_COMMIT:-}" ]; then
    echo "set INFER_COMMIT to the commit this tree is a copy of" >&2
    exit 2
fi
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
mkdir -p "$out"
marker=$(mktemp)  # the JSONs newer than this were written by this call
python3 -c "import jax; print('devices:', jax.devices())"
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
    timeout --signal=TERM --kill-after=5 "$limit" python3 "benchmarks/$name.py" ${args[@]+"${args[@]}"}
    echo "== $name: exit $? after $(($(date +%s) - start)) s"
    find benchmarks/results -name '*.json' -newer "$marker" -exec cp {} "$out"/ \;
done
ls -la "$out"
