set terminal pngcairo size 900,520 font ",11"
set output "/work/main/bench/results/2026-11-27-intel-xeon-2c/ttft-10-turn.png"
set title "Time to first token per turn — 10-turn chat"
set xlabel "turn"
set ylabel "TTFT (ms)"
set grid
set key top left
set datafile missing "NaN"
set xrange [1:10]
set xtics 1
set mxtics 1
set yrange [0:*]
plot "/work/main/bench/results/2026-11-27-intel-xeon-2c/ttft-10-turn.dat" using 1:2 with linespoints lw 2 title "Bellows", "/work/main/bench/results/2026-11-27-intel-xeon-2c/ttft-10-turn.dat" using 1:3 with linespoints lw 2 title "llama-server, cache", "/work/main/bench/results/2026-11-27-intel-xeon-2c/ttft-10-turn.dat" using 1:4 with linespoints lw 2 title "llama-server, no cache"
