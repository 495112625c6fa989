// Side-effect module: import it before '@livekit/rtc-node' (ESM evaluates imports in order).
// rtc-node fixes its pino log level when first loaded and logs at debug level to stdout
// unless NODE_ENV is 'production', which floods test output.
process.env.NODE_ENV ??= 'production';
