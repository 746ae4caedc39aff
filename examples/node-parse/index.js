function parse(event) {
  const items = (event && event.items) || [];
  return { count: items.length, eventEntries: items.map((x) => ({ value: x })) };
}

module.exports = { parse };
