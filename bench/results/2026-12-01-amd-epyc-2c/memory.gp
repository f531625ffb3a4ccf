set terminal pngcairo size 900,520 font ",11"
set output "bench/results/2026-12-01-amd-epyc-2c/memory.png"
set title "Memory"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "MiB"
set grid ytics
set key top right
set yrange [0:*]
plot "bench/results/2026-12-01-amd-epyc-2c/memory.dat" using 2:xtic(1) title "RSS after load", '' using 3 title "RSS after one-word chat", '' using 4 title "KV after one-word chat"
