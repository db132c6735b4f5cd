// Phone numbers and WhatsApp ids (JIDs) for one-to-one chats.
//
// One rule on both sides of the gateway/worker boundary: the gateway (service/validation.py,
// with the `phonenumbers` library) turns what a client typed into E.164 "+<digits>"; the worker
// accepts exactly those strings and refuses every other one. A string is accepted when it is
// '+', then 7 to 15 ASCII digits without a leading 0, starting with a country calling code that
// `phonenumbers` knows. The shared vectors in tests/fixtures/phone_numbers.json pin both sides,
// and a Python test checks this list against the library (update it when `phonenumbers` gains a
// code: tests/test_phone_numbers.py prints the new list).
export const COUNTRY_CALLING_CODES = Object.freeze([
  1, 7, 20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55,
  56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98, 211, 212, 213,
  216, 218, 220, 221, 222, 223, 224, 225, 226, 227, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237,
  238, 239, 240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255, 256, 257,
  258, 260, 261, 262, 263, 264, 265, 266, 267, 268, 269, 290, 291, 297, 298, 299, 350, 351, 352, 353,
  354, 355, 356, 357, 358, 359, 370, 371, 372, 373, 374, 375, 376, 377, 378, 380, 381, 382, 383, 385,
  386, 387, 389, 420, 421, 423, 500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 590, 591, 592, 593,
  594, 595, 596, 597, 598, 599, 670, 672, 673, 674, 675, 676, 677, 678, 679, 680, 681, 682, 683, 685,
  686, 687, 688, 689, 690, 691, 692, 800, 808, 850, 852, 853, 855, 856, 870, 878, 880, 881, 882, 883,
  886, 888, 960, 961, 962, 963, 964, 965, 966, 967, 968, 970, 971, 972, 973, 974, 975, 976, 977, 979,
  992, 993, 994, 995, 996, 998
])
const KNOWN = new Set(COUNTRY_CALLING_CODES.map(String))
// No `u` flag and no `m` flag: \d is ASCII 0-9 only and $ is the very end (no trailing newline).
const E164 = /^\+[1-9]\d{6,14}$/

// The country calling code at the start of `digits`, found as phonenumbers does: the shortest
// known prefix of 1 to 3 digits (calling codes are prefix-free).
export const countryCallingCode = (digits) => {
  for (let n = 1; n <= 3; n++) {
    if (KNOWN.has(digits.slice(0, n))) return digits.slice(0, n)
  }
  return null
}

export const isE164 = (value) =>
  typeof value === 'string' && E164.test(value) && countryCallingCode(value.slice(1)) !== null
export const phoneToJid = (phone) => `${phone.slice(1)}@s.whatsapp.net`
export const jidToPhone = (jid) => {
  if (!jid || !jid.endsWith('@s.whatsapp.net')) return null
  return `+${jid.split('@')[0].split(':')[0]}`
}
