module.exports = {
  handle: async (event) => ({ message: `hello, ${(event && event.name) || "world"}`, runtime: "node" }),
};
