/**
 * Unit and integration tests run from TypeScript through ts-jest, type-checked
 * (test/tsconfig.json: diagnostics on, so a type error fails its suite); child-process
 * tests use the compiled dist/ (npm test builds first).
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/tsconfig.json', diagnostics: true }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
