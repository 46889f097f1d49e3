// The built docs site, read in a real headless Chrome with the network cut off:
//
//   node tests/site_browser_check.mjs SITE_DIR [NODE_MODULES_DIR]
//
// Every page is opened from file://; any request for anything else (a CDN, a font
// service) is recorded and refused, as on a machine without internet. A page passes when
// it asked for nothing outside the site, threw no script error, drew every equation (each
// <math> element has a box of non-zero size, and the rows of an `aligned` block stand one
// below the other) and shows no raw TeX (\[, \( or \begin) outside its code. Prints one
// JSON line per page and exits 1 when one fails. Needs puppeteer-core, and a Chrome:
// $CHROME_PATH, else the one the @sparticuz/chromium package unpacks (npm install
// puppeteer-core @sparticuz/chromium). tests/test_site.py runs it when these are there.
import { createRequire } from "node:module";
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const site = resolve(process.argv[2] || "site");
const modules = resolve(process.argv[3] || "node_modules");
const require = createRequire(join(modules, "noop.js"));
const puppeteer = require("puppeteer-core");

let executablePath = process.env.CHROME_PATH;
let args = ["--no-sandbox"];
if (!executablePath) {
  const chromium = (await import(pathToFileURL(require.resolve("@sparticuz/chromium")).href)).default;
  executablePath = await chromium.executablePath();
  args = chromium.args;
}

function pages(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return pages(path);
    return name.endsWith(".html") ? [path] : [];
  });
}

const browser = await puppeteer.launch({ executablePath, args, headless: true });
let failed = 0;
try {
  for (const file of pages(site)) {
    const page = await browser.newPage();
    const outside = [];
    const errors = [];
    await page.setRequestInterception(true);
    page.on("request", (request) => {
      const url = request.url();
      if (url.startsWith("file:") || url.startsWith("data:") || url.startsWith("blob:")) {
        request.continue();
      } else {
        outside.push(url);
        request.abort();
      }
    });
    page.on("pageerror", (error) => errors.push(String(error.message || error)));
    await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
    await new Promise((done) => setTimeout(done, 300)); // the theme's scripts settle
    const seen = await page.evaluate(() => {
      const maths = [...document.querySelectorAll("math")];
      const empty = maths.filter((m) => {
        const box = m.getBoundingClientRect();
        return !(box.width > 0 && box.height > 0);
      }).length;
      const tables = [...document.querySelectorAll("math mtable")];
      const unstacked = tables.filter((t) => {
        const tops = [...t.querySelectorAll(":scope > mtr")].map((r) => r.getBoundingClientRect().top);
        return tops.some((top, i) => i > 0 && !(top > tops[i - 1]));
      }).length;
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      const raw = [];
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.parentElement.closest("pre, code, script, style")) continue;
        const m = node.textContent.match(/\\\[|\\\(|\\begin\{/);
        if (m) raw.push(node.textContent.trim().slice(0, 60));
      }
      return { maths: maths.length, empty, tables: tables.length, unstacked, raw };
    });
    const ok = !outside.length && !errors.length && !seen.empty && !seen.unstacked && !seen.raw.length;
    if (!ok) failed += 1;
    console.log(JSON.stringify({ page: file.slice(site.length + 1), ok, outside, errors, ...seen }));
    await page.close();
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
