// Structured JSON logs for every component; `component` names the part that logs.
import winston from 'winston';

export type Logger = winston.Logger;

export function newLogger(component: string, level = process.env.CILIUM_TS_LOG_LEVEL ?? 'info'): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    defaultMeta: { component },
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
}
