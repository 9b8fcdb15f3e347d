// The npm `convex` client as a judge of the emulator's sync protocol.
// Usage: node js_peer.mjs <deployment url> <admin key> <user jwt>
// Prints one JSON object per line: {"step": ..., ...}; exits non-zero on failure.
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";

const [url, adminKey, userToken] = process.argv.slice(2);
const q = (name) => makeFunctionReference(name);
const started = Date.now();
const report = (step, data) => console.log(JSON.stringify({ step, ms: Date.now() - started, ...data }));
const within = (promise, ms, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`timeout: ${what}`)), ms))]);

const options = { skipConvexDeploymentUrlCheck: true, unsavedChangesWarning: false };
const channel = `js-${Date.now()}`;
const client = new ConvexClient(url, options);
const other = new ConvexClient(url, options);
try {
  const seen = [];
  let onSeen = () => {};
  client.onUpdate(q("messages:list"), { channel }, (value) => {
    seen.push(value);
    onSeen(value);
  });
  const waitFor = (predicate, what) =>
    within(new Promise((resolve) => {
      if (seen.some(predicate)) return resolve(seen.find(predicate));
      onSeen = (value) => predicate(value) && resolve(value);
    }), 10000, what);

  await waitFor((v) => Array.isArray(v) && v.length === 0, "initial result");
  report("initial", { value: seen[0] });

  const id = await within(client.mutation(q("messages:send"), { channel, body: "a" }), 10000, "mutation");
  report("mutation", { id });

  await within(other.mutation(q("messages:send"), { channel, body: "b" }), 10000, "other mutation");
  const both = await waitFor((v) => v.length === 2, "update after another client's mutation");
  report("update", { value: both });

  const doubled = await within(client.action(q("messages:double"), { x: 4 }), 10000, "action");
  report("action", { value: doubled });

  const http = new ConvexHttpClient(url);
  report("http", { value: await http.query(q("messages:list"), { channel }) });

  try {
    await within(client.query(q("messages:fails"), {}), 10000, "failing query");
    report("fails", { error: null });
  } catch (error) {
    report("fails", { error: String(error.message).split("\n")[0], data: String(error.data?.code) });
  }

  const admin = new ConvexClient(url, options);
  admin.client.setAdminAuth(adminKey);
  report("admin", { value: await within(admin.query(q("_system/frontend/getTableMapping"), {}), 10000, "admin query") });
  await admin.close();

  const user = new ConvexClient(url, options);
  const authed = new Promise((resolve) => user.setAuth(async () => userToken, (isAuthenticated) => resolve(isAuthenticated)));
  report("auth", { authenticated: await within(authed, 10000, "setAuth") });
  report("whoami", { value: await within(user.query(q("messages:whoami"), {}), 10000, "whoami") });
  await user.close();
  report("done", {});
} catch (error) {
  report("error", { message: String(error && error.stack || error) });
  process.exitCode = 1;
} finally {
  await client.close();
  await other.close();
}
// Open keep-alive sockets would keep node alive for seconds more.
process.exit(process.exitCode ?? 0);
