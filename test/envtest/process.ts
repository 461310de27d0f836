// Moved to hack/controlplane/ (production code); kept so tests importing it from here keep working.
export * from '../../hack/controlplane/process.js';
