// Injected by tests/browser/conftest.py before any page script: every Content-Security-Policy
// refusal is written to the console, where the test's watcher fails the test on it.
document.addEventListener("securitypolicyviolation", function (e) {
  console.log("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
              " at " + (e.sourceFile || "") + ":" + (e.lineNumber || 0));
});
