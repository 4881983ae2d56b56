#!/usr/bin/env node
import "../build/bin.js"
