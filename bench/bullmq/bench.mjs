// BullMQ baseline: N no-op jobs added in bulk, processed by one worker
// with the given concurrency; prints jobs/s as JSON.
//   REDIS_PORT=6379 N=100000 CONCURRENCY=100 node bench.mjs
import { Queue, Worker } from "bullmq";

const connection = { host: "127.0.0.1", port: Number(process.env.REDIS_PORT || 6379) };
const n = Number(process.env.N || 100000);
const concurrency = Number(process.env.CONCURRENCY || 100);
const name = `bench-${Date.now()}`;

const queue = new Queue(name, { connection });
let done = 0;
let resolveAll;
const all = new Promise((r) => (resolveAll = r));
const worker = new Worker(name, async () => null, {
  connection,
  concurrency,
  removeOnComplete: { count: 0 },
  autorun: false,
});
worker.on("completed", () => {
  if (++done === n) resolveAll();
});

const start = performance.now();
for (let i = 0; i < n; i += 1000) {
  const jobs = [];
  for (let j = i; j < Math.min(n, i + 1000); j++) jobs.push({ name: "noop", data: { x: j } });
  await queue.addBulk(jobs);
}
const added = performance.now();
worker.run();
await all;
const end = performance.now();
const secs = (end - start) / 1000;
const psecs = (end - added) / 1000;
console.log(JSON.stringify({ baseline: "bullmq", jobs: n, concurrency, seconds: secs, jobs_per_s: n / secs, process_jobs_per_s: n / psecs }));
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
