// Drives the switchboard web console in headless chromium (playwright-core) against a gateway
// in front of the thermostat and the jobs service; run by tests/console.rs. Every step waits
// for what a person would see; any step that does not happen fails the run (exit 1).
//
// Environment: CONSOLE_URL (the gateway's base URL), INSTANCE (the services' instance),
// TOKEN (the gateway's --token), TOKEN_BY ("panel": typed into the page; "fragment": #token=),
// CHROMIUM (the browser), SCREENSHOTS (a directory to write PNGs into; unset: none),
// EVERYTHING (the description JSON of examples/interfaces/everything.yaml, for the form checks),
// COME_AND_GO (a directory: writing `start-second` there starts a thermostat instance `second`,
// `stop-second` stops it; unset: that step is left out).

import { writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const { CONSOLE_URL, INSTANCE, TOKEN, TOKEN_BY, CHROMIUM, SCREENSHOTS, EVERYTHING, COME_AND_GO } = process.env;
const STEP_MS = 30_000;

function step(text) {
  console.log(`step: ${text}`);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shot(page, name) {
  if (!SCREENSHOTS) return;
  await page.waitForTimeout(300); // let the flash animations settle
  await page.screenshot({ path: `${SCREENSHOTS}/console-${name}.png`, fullPage: true });
  console.log(`screenshot: console-${name}.png`);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
let failed = false;
let page;
try {
  page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  page.setDefaultTimeout(STEP_MS);
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // The browser logs every 4xx it is answered with ("Failed to load resource"); the steps below
  // cause some (401, 422) on purpose and check how the page shows them.
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && problems.push(`console error: ${m.text()}`));

  const thermostatKey = `Thermostat/${INSTANCE}`;
  const jobsKey = `Jobs/${INSTANCE}`;
  if (TOKEN_BY === "fragment") {
    step("open the console with the token in the URL fragment");
    await page.goto(`${CONSOLE_URL}/#token=${encodeURIComponent(TOKEN)}&service=${encodeURIComponent(thermostatKey)}`);
    check(!page.url().includes("token="), `the token stays in the address bar: ${page.url()}`);
  } else {
    step("open the console without the token: it asks for it");
    await page.goto(`${CONSOLE_URL}/#service=${encodeURIComponent(thermostatKey)}`);
    await page.locator("#token-panel").waitFor({ state: "visible" });
    await page.locator("#services-updated .failure").filter({ hasText: "HTTP 401" }).waitFor();
    await page.fill("#token-input", TOKEN);
    await page.click("#token-form button[type=submit]");
  }

  step("the services appear in the list");
  await page.locator(`#service-list li[data-service="${thermostatKey}"]`).waitFor();
  await page.locator(`#service-list li[data-service="${jobsKey}"]`).waitFor();

  step("the thermostat's documentation is shown");
  const head = page.locator(".service-head");
  await head.locator("h1", { hasText: "Thermostat" }).waitFor();
  await head.getByText("A thermostat for one heating zone.", { exact: false }).waitFor();
  await page.locator('[data-member="method:boost"] .doc').filter({ hasText: "Raises the set-point" }).waitFor();

  const boost = page.locator('[data-member="method:boost"]');
  step("a bad duration is refused before sending");
  await boost.getByLabel("extraCelsius", { exact: true }).fill("1.5");
  await boost.getByLabel("forHowLong", { exact: true }).fill("ten minutes");
  await boost.getByRole("button", { name: "Call" }).click();
  await boost.locator(".invalid-input").filter({ hasText: "forHowLong: an ISO 8601 duration is needed" }).waitFor();
  check(await boost.getByLabel("forHowLong", { exact: true }).evaluate((e) => e.classList.contains("invalid")), "the bad input is not marked");

  step("a method call through the form shows the result");
  await boost.getByLabel("forHowLong", { exact: true }).fill("PT10M");
  await boost.getByLabel("reason given").check();
  await boost.getByLabel("reason", { exact: true }).fill("console test");
  await boost.getByRole("button", { name: "Call" }).click();
  const endsAt = boost.locator('.result dd[data-field="endsAt"]');
  await endsAt.waitFor();
  const ends = await endsAt.textContent();
  check(/^\d{4}-\d{2}-\d{2}T.*Z$/.test(ends), `endsAt is not a UTC timestamp: ${ends}`);
  const minutes = (Date.parse(ends) - Date.now()) / 60_000;
  check(minutes > 8 && minutes < 11, `the boost ends in ${minutes} minutes, not about 10`);

  const status = page.locator('[data-member="method:getStatus"]');
  await status.getByRole("button", { name: "Call" }).click();
  await status.locator('.result dd[data-field="mode"]').filter({ hasText: /^(off \(0\)|heat \(1\)|eco \(10\))$/ }).waitFor();

  step("a signal arrives in its pane");
  const signal = page.locator('[data-member="signal:temperatureChanged"]');
  await signal.locator(".count").filter({ hasText: /^([2-9]|\d\d+) received/ }).waitFor();
  const celsius = await signal.locator('.live dd[data-field="celsius"]').textContent();
  check(Number.isFinite(Number(celsius)), `the signal's celsius is not a number: ${celsius}`);
  await shot(page, "method-and-signal");

  step("a property edited through its form; the change arrives live");
  const setpoint = page.locator('[data-member="property:setpoint"]');
  await setpoint.locator('.live dd[data-field="celsius"]').filter({ hasText: /^\d/ }).waitFor();
  await setpoint.getByLabel("celsius", { exact: true }).fill("23.5");
  await setpoint.getByRole("button", { name: "Set" }).click();
  await setpoint.locator('.result dd[data-field="celsius"]', { hasText: "23.5" }).waitFor();
  await setpoint.locator('.live dd[data-field="celsius"]', { hasText: /^23\.5$/ }).waitFor();
  await setpoint.locator(".version", { hasText: /^version \d+/ }).waitFor();
  const mode = page.locator('[data-member="property:mode"]');
  await mode.locator('.live dd[data-field="mode"]').filter({ hasText: /\(\d+\)$/ }).waitFor();
  check((await mode.locator("form").count()) === 0, "the read-only property has a form");
  await shot(page, "property");

  step("an action runs to completion with progress");
  const preheat = page.locator('[data-member="action:preheat"]');
  await preheat.getByLabel("targetCelsius", { exact: true }).fill("25");
  await preheat.getByRole("button", { name: "Start" }).click();
  const goal = preheat.locator(".goal").first();
  await goal.locator(".status.succeeded").waitFor();
  check((await goal.locator(".progress").getAttribute("aria-valuenow")) === "100", "the progress bar did not reach 100");
  await goal.locator('.result dd[data-field="reachedCelsius"]', { hasText: /^25$/ }).waitFor();
  await goal.locator('.feedback dd[data-field="percent"]', { hasText: /^100$/ }).waitFor();
  check(await goal.getByRole("button", { name: "Cancel" }).isDisabled(), "Cancel stays enabled after the end");

  step("an action started and cancelled");
  await preheat.getByLabel("targetCelsius", { exact: true }).fill("24");
  await preheat.getByRole("button", { name: "Start" }).click();
  const cancelling = preheat.locator(".goal").first();
  await cancelling.locator(".status.running").waitFor();
  await cancelling.locator('.feedback dd[data-field="percent"]').waitFor();
  await cancelling.getByRole("button", { name: "Cancel" }).click();
  await cancelling.locator(".status.cancelled").waitFor();
  check(await cancelling.getByRole("button", { name: "Cancel" }).isDisabled(), "Cancel stays enabled after cancelling");

  step("a declared error is shown with its name, code and fields");
  await preheat.getByLabel("targetCelsius", { exact: true }).fill("99");
  await preheat.getByRole("button", { name: "Start" }).click();
  const refusal = preheat.locator(".outcome .failure");
  await refusal.locator(".error-name", { hasText: /^OutOfRange$/ }).waitFor();
  await refusal.locator(".pill", { hasText: /^code 1$/ }).waitFor();
  await refusal.locator(".pill", { hasText: /^HTTP 422$/ }).waitFor();
  await refusal.locator('dd[data-field="requestedCelsius"]', { hasText: /^99$/ }).waitFor();
  await refusal.locator('dd[data-field="maxCelsius"]', { hasText: /^30$/ }).waitFor();
  await shot(page, "action");

  step("another service: an action started and cancelled");
  await page.locator(`#service-list li[data-service="${jobsKey}"] button`).click();
  await page.locator(".service-head h1", { hasText: "Jobs" }).waitFor();
  const count = page.locator('[data-member="action:count"]');
  await count.getByLabel("to", { exact: true }).fill("100000");
  await count.getByLabel("stepMs", { exact: true }).fill("50");
  await count.getByLabel("startAfterMs", { exact: true }).fill("0");
  await count.getByRole("button", { name: "Start" }).click();
  const counting = count.locator(".goal").first();
  await counting.locator(".status.running").waitFor();
  await counting.locator('.feedback dd[data-field="value"]').filter({ hasText: /^([3-9]|\d\d+)$/ }).waitFor();
  await counting.getByRole("button", { name: "Cancel" }).click();
  await counting.locator(".status.cancelled").waitFor();
  check(await counting.getByRole("button", { name: "Cancel" }).isDisabled(), "Cancel stays enabled after cancelling");

  step("an integer out of its range is refused before sending");
  await count.getByLabel("stepMs", { exact: true }).fill("-1");
  await count.getByRole("button", { name: "Start" }).click();
  await count.locator(".invalid-input").filter({ hasText: "stepMs: uint32 holds 0 to 4294967295" }).waitFor();
  check((await count.locator(".goal").count()) === 1, "a refused form started a goal");
  step("a command sent through its form; the notice it announces arrives");
  const note = page.locator('[data-member="command:note"]');
  await note.getByLabel("text", { exact: true }).fill("hello from the console");
  await note.getByRole("button", { name: "Send" }).click();
  await note.locator(".result", { hasText: "sent at" }).waitFor();
  await page.locator('[data-member="signal:notice"] .live dd[data-field="text"]', { hasText: /^hello from the console$/ }).waitFor();
  await shot(page, "cancel");

  if (COME_AND_GO) {
    step("an instance that starts appears in the list, and one that stops goes");
    const second = page.locator('#service-list li[data-service="Thermostat/second"]');
    check((await second.count()) === 0, "the second instance is listed before it started");
    writeFileSync(`${COME_AND_GO}/start-second`, "");
    await second.waitFor();
    check(!(await second.evaluate((e) => e.classList.contains("gone"))), "a running instance is marked gone");
    writeFileSync(`${COME_AND_GO}/stop-second`, "");
    await page.locator('#service-list li.gone[data-service="Thermostat/second"]').waitFor();
    await second.waitFor({ state: "detached" });
  }

  step("forms for structs, optionals, lists, maps, bytes and datetimes (the Everything interface)");
  await page.evaluate(async (iface) => {
    const { fieldsForm } = await import("/console/forms.js");
    const host = document.createElement("section");
    host.id = "forms-test";
    host.className = "card";
    document.querySelector("#detail").prepend(host);
    window.formsUnderTest = {};
    for (const name of ["echoNested", "echoCollections", "echoTree"]) {
      const form = fieldsForm(iface, iface.methods.find((m) => m.name === name).arguments);
      window.formsUnderTest[name] = form;
      host.append(form.node);
    }
  }, JSON.parse(EVERYTHING));
  const forms = page.locator("#forms-test");
  const field = (path) => forms.locator(`[data-field-path="${path}"]`);
  const read = (name) =>
    page.evaluate((name) => {
      try {
        return { value: window.formsUnderTest[name].read() };
      } catch (e) {
        return { problem: e.message };
      }
    }, name);
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  await forms.getByLabel("shape.origin.x", { exact: true }).fill("1.5");
  await forms.getByLabel("shape.origin.y", { exact: true }).fill("-2");
  await forms.getByLabel("shape.label given", { exact: true }).check();
  await forms.getByLabel("shape.label.text", { exact: true }).fill("hi");
  await forms.getByLabel("shape.label.color", { exact: true }).selectOption("blue");
  await field("shape.corners").getByRole("button", { name: "+ item" }).click();
  await forms.getByLabel("shape.corners[0].x", { exact: true }).fill("3");
  await forms.getByLabel("shape.corners[0].y", { exact: true }).fill("4");
  await forms.getByLabel("maybeText given", { exact: true }).check();
  await forms.getByLabel("maybeText", { exact: true }).fill("text");
  let got = await read("echoNested");
  const nested = { shape: { origin: { x: 1.5, y: -2 }, label: { text: "hi", color: "blue" }, corners: [{ x: 3, y: 4 }] }, maybeText: "text" };
  check(same(got.value, nested), `echoNested's form gave ${JSON.stringify(got)}`);

  await field("numbers").getByRole("button", { name: "+ item" }).click();
  await forms.getByLabel("numbers[0]", { exact: true }).fill("7");
  await field("colors").getByRole("button", { name: "+ item" }).click();
  await forms.getByLabel("colors[0]", { exact: true }).selectOption("black");
  await field("times").getByRole("button", { name: "+ item" }).click();
  await forms.getByLabel("times[0]", { exact: true }).fill("yesterday");
  await field("blobs").getByRole("button", { name: "+ item" }).click();
  await forms.getByLabel("blobs[0]", { exact: true }).fill("aGVsbG8");
  await field("scores").getByRole("button", { name: "+ entry" }).click();
  await forms.getByLabel("scores key", { exact: true }).fill("alice");
  await forms.getByLabel("scores[key]", { exact: true }).fill("9.5");
  got = await read("echoCollections");
  check(got.problem && got.problem.includes("times[0]: an RFC 3339 date and time is needed"), `a bad datetime passed: ${JSON.stringify(got)}`);
  check(got.problem.includes("blobs[0]: padded standard base64 is needed"), `unpadded base64 passed: ${JSON.stringify(got)}`);
  await forms.getByLabel("times[0]", { exact: true }).fill("2026-12-07T09:30:00Z");
  await forms.getByLabel("blobs[0]", { exact: true }).fill("aGVsbG8=");
  got = await read("echoCollections");
  const collections = { numbers: [7], names: [], points: [], colors: ["black"], times: ["2026-12-07T09:30:00Z"], blobs: ["aGVsbG8="], maybe: [], scores: { alice: 9.5 }, shapes: {} };
  check(same(got.value, collections), `echoCollections's form gave ${JSON.stringify(got)}`);

  await forms.getByLabel("tree.name", { exact: true }).fill("leaf");
  await forms.getByLabel("tree.parent given", { exact: true }).check();
  await forms.getByLabel("tree.parent.name", { exact: true }).fill("root");
  got = await read("echoTree");
  check(same(got.value, { tree: { name: "leaf", parent: { name: "root", children: [] }, children: [] } }), `echoTree's form gave ${JSON.stringify(got)}`);

  check(problems.length === 0, `the page reported problems:\n${problems.join("\n")}`);
  console.log("console: every step passed");
} catch (e) {
  failed = true;
  console.error(`console test failed: ${e.stack || e}`);
  if (page && process.env.FAILURE_SCREENSHOT) {
    await page.screenshot({ path: process.env.FAILURE_SCREENSHOT, fullPage: true }).catch(() => {});
    console.error(`the page as it was: ${process.env.FAILURE_SCREENSHOT}`);
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
