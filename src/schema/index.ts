import { lexicographicSortSchema } from 'graphql';
import { builder } from './builder.js';
import './errors.js';
import './destination.js';
import './audience.js';
import './contact.js';
import './audience-sync.js';
import './sync-run.js';
import './task.js';
import './sync-audiences.js';
import './audience-import.js';
import './workspace.js';
import './api-key.js';
import './viewer.js';

export const schema = lexicographicSortSchema(builder.toSchema());
