import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['lib/', 'build-test/', 'node_modules/', '../rubberduck_jupyter/']
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }],
      curly: ['error', 'all'],
      eqeqeq: 'error',
      'no-restricted-syntax': [
        'error',
        {
          // innerHTML only ever receives sanitizeAnswerHtml output (see markdown.ts).
          selector:
            "AssignmentExpression[left.property.name='innerHTML'][right.callee.name!='renderAnswerMarkdown']",
          message: 'Assign innerHTML only from renderAnswerMarkdown().'
        }
      ]
    }
  }
);
