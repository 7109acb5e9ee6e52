// Preloaded (node --require) into the bridges bench/run starts, so that a
// server told only a port listens on 127.0.0.1 rather than on every
// interface: supergateway 4.0.0 has no --host flag. It changes nothing else.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const port = args[0];
  const portOnly = typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port));
  if (portOnly && (args.length === 1 || typeof args[1] === 'function')) {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
