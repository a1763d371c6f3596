# append-records.sh SIZE COUNT: append COUNT records of SIZE bytes to /var/log/mixed-SIZE.txt, each
# with a single write(2) in append mode (dd bs=SIZE oflag=append). A record is one line: the writer's
# name ($WHO), a sequence number and x's, padded so that the line and its newline are SIZE bytes.
size=$1; count=$2; out=/var/log/mixed-$size.txt
head -c $((size - 17)) /dev/zero | tr '\0' x > /tmp/fill
for i in $(seq 1 "$count"); do printf '%-8s %06d %s\n' "$WHO" "$i" "$(cat /tmp/fill)"; done > /tmp/records
split -b "$size" -d -a 6 /tmp/records /tmp/rec.
for f in /tmp/rec.*; do dd if="$f" of="$out" bs="$size" count=1 oflag=append conv=notrunc status=none; done
rm -f /tmp/rec.* /tmp/records /tmp/fill
