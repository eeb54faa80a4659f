// JavaScript unit tests of the frontend's shared pieces (js/tests/), in jsdom.
// Run by `npm test`, which scripts/test.sh runs before pytest.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["js/tests/**/*.test.js"],
    environment: "jsdom",
  },
});
