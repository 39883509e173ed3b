# Helpers shared by the side-by-side benchmark scripts (sourced, not run).

# The images_per_sec of the last JSON line that COMMAND prints (bench and the anchors alike).
rate() { "$@" 2>/dev/null | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_sec"])'; }

# The median of the numbers on stdin (separated by spaces or newlines).
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
