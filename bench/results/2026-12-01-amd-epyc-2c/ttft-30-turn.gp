set terminal pngcairo size 900,520 font ",11"
set output "bench/results/2026-12-01-amd-epyc-2c/ttft-30-turn.png"
set title "Time to first token per turn — 30-turn chat, paired"
set xlabel "turn"
set ylabel "TTFT (ms)"
set grid
set key outside bottom center horizontal
set datafile missing "NaN"
set xrange [1:30]
set xtics 2
set mxtics 1
set yrange [0:*]
set y2label "Bellows / llama-server with cache"
set y2tics
set y2range [0.5:1.5]
plot "bench/results/2026-12-01-amd-epyc-2c/ttft-30-turn.dat" using 1:2 with linespoints lw 2 title "Bellows", "bench/results/2026-12-01-amd-epyc-2c/ttft-30-turn.dat" using 1:3 with linespoints lw 2 title "llama-server, cache", "bench/results/2026-12-01-amd-epyc-2c/ttft-30-turn.dat" using 1:4 with linespoints lw 2 title "llama-server, no cache", "bench/results/2026-12-01-amd-epyc-2c/ttft-30-turn.dat" using 1:5 axes x1y2 with points pt 7 ps 1.2 title "per-turn ratio (right axis)", 1.10 axes x1y2 with lines dt 2 lc rgb "gray" title "1.10"
