# check-records.awk -v n=SIZE FILE: prints "lines torn switches" for a file of records written by
# append-records.sh: a torn line is not one whole record of n bytes (its newline included); a switch
# is a line written by another writer than the line before it.
{
    if (length($0) != n - 1 || $0 !~ /^(producer|writer) +[0-9]+ x+$/) torn++
    if (NR > 1 && $1 != previous) switches++
    previous = $1
}
END { print NR, torn + 0, switches + 0 }
