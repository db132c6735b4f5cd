// Linking by pairing code on the status page (issue 25), inlined before status.js: a number typed beside
// Connect goes with POST /connect (the account then links by a code typed on that phone, not a QR), and while
// the account waits in state pairing_code its code shows in large letters with where to type it. The code
// comes from the API and is set as text only; like the QR, it goes into no log line of the page.
const PAIRING = (function () {
  const $id = (id) => document.getElementById(id);
  const phone = () => $id('connect-phone').value.trim();
  return {
    /** the body of POST /connect: {phone_number} when a number was typed, else {} (a QR) */
    connectBody: () => (phone() ? { phone_number: phone() } : {}),
    /**
     * the account's state: the number field beside Connect while it can be connected (`connectable`), the code
     * while `waiting` for it (kept when an event names the state without the code), else neither
     */
    apply (connectable, waiting, code) {
      $id('connect-phone-label').hidden = !connectable;
      if (!waiting) code = '';
      else if (code === undefined || code === null) code = $id('pairing-code').textContent;
      $id('pairing-code').textContent = code;
      $id('code-box').hidden = !code;
    }
  };
})();
