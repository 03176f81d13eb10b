#!/usr/bin/env node
// Reference percentiles for wsload's tests, computed by hdr-histogram-js (a port of HdrHistogram's
// Java implementation) from the histograms wsload writes.
//
// stdin: one histogram a line, in HdrHistogram's V2 compressed base64 encoding (the "hdr" field
// of wsload's JSON results and the payload of its .hlog lines). Blank lines are skipped.
// stdout: one JSON object a line, in input order:
//
//	{"count":198,"min":1,"max":65087,"p0":1,"p25":...,"p100":65087}
//
// min is the lowest recorded value's lowest equivalent value and max the highest recorded
// value's highest equivalent value, as the reference keeps them; pN is getValueAtPercentile(N),
// with wsload's spelling of percentile names (p999 is 99.9%, p9999 is 99.99%).
// A line that does not decode prints an error naming its line number and exits 1.
"use strict";

const readline = require("node:readline");
const hdr = require("hdr-histogram-js");

const percentiles = [
  ["p0", 0],
  ["p25", 25],
  ["p50", 50],
  ["p75", 75],
  ["p90", 90],
  ["p95", 95],
  ["p99", 99],
  ["p999", 99.9],
  ["p9999", 99.99],
  ["p100", 100],
];

async function main() {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    if (line.trim() === "") {
      continue;
    }
    let h;
    try {
      // 64-bit counts: a bucket of a merged result can pass 2^32. Plain JS, not WebAssembly,
      // so nothing needs initializing first.
      h = hdr.decodeFromCompressedBase64(line, 64, false);
    } catch (err) {
      process.stderr.write(`hdr-percentiles: line ${n}: ${err.message || err}\n`);
      process.exit(1);
    }
    // Java's getMinValue: 0 when the histogram is empty or holds a 0.
    const min = h.totalCount === 0 || h.getCountAtIndex(0) > 0 ? 0 : h.minNonZeroValue;
    const out = { count: h.totalCount, min, max: h.maxValue };
    for (const [name, p] of percentiles) {
      out[name] = h.getValueAtPercentile(p);
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  }
}

main().catch((err) => {
  process.stderr.write(`hdr-percentiles: ${err.stack || err}\n`);
  process.exit(1);
});
